//! The committed JSON Schema is the generated one, and it accepts every example.
//!
//! Regenerate after changing the config types:
//! `cargo run -- schema > deploy/schema/cohortd-config.schema.json`.

use std::path::Path;
use std::process::Command;

use cohortd::config::schema::schema_text;

const COMMITTED: &str = "deploy/schema/cohortd-config.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_the_generated_one() {
    let committed = std::fs::read_to_string(root().join(COMMITTED)).unwrap();
    assert!(
        committed == schema_text(),
        "{COMMITTED} is stale: run `cargo run -- schema > {COMMITTED}`"
    );
}

#[test]
fn schema_describes_the_config_types() {
    let s = cohortd::config::schema::schema();
    let exp = &s["$defs"]["ExperimentConfig"];
    assert_eq!(exp["additionalProperties"], false);
    for field in [
        "experimentId",
        "key",
        "trafficSchedule",
        "assignment",
        "variants",
    ] {
        assert!(exp["properties"].get(field).is_some(), "{field}");
    }
    assert_eq!(
        s["$defs"]["RampStep"]["required"],
        serde_json::json!(["at", "trafficAllocation"])
    );
}

/// Validates config files against the schema with Python's `jsonschema` (pinned in
/// tests/python/requirements.txt; `.ci/test.sh` sets COHORTD_PYTHON to the venv).
/// The `jsonschema` crate would add ~50 crates (ICU included) to the build.
#[test]
fn every_example_validates_and_typos_and_bad_ranges_do_not() {
    let Ok(python) = std::env::var("COHORTD_PYTHON") else {
        eprintln!("skipped: COHORTD_PYTHON is not set (.ci/test.sh sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.json");
    std::fs::write(
        &typo,
        r#"{"key":"x","status":"running","trafficAlocation":0.5,"variants":["a"]}"#,
    )
    .unwrap();
    let range = dir.path().join("range.yaml");
    std::fs::write(
        &range,
        "key: x\nstatus: running\nvariants: [a]\ntrafficSchedule:\n  - {at: \"2026-01-01T00:00:00Z\", trafficAllocation: 1.5}\n",
    )
    .unwrap();
    let script = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    with open(path) as f:
        doc = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    errors = list(v.iter_errors(doc))
    print(("invalid " if errors else "valid ") + path)
"#;
    let mut examples: Vec<_> = ["examples/configs", "deploy/kubernetes/base/experiments"]
        .iter()
        .filter_map(|d| std::fs::read_dir(root().join(d)).ok())
        .flat_map(|entries| entries.map(|e| e.unwrap().path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "json" || x == "yaml" || x == "yml")
        })
        .collect();
    examples.sort();
    assert!(!examples.is_empty());
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(root().join(COMMITTED))
        .args(&examples)
        .arg(&typo)
        .arg(&range)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), examples.len() + 2);
    for (line, path) in lines.iter().zip(&examples) {
        assert_eq!(line, &format!("valid {}", path.display()));
    }
    assert_eq!(lines[examples.len()], format!("invalid {}", typo.display()));
    assert_eq!(
        lines[examples.len() + 1],
        format!("invalid {}", range.display())
    );
}
