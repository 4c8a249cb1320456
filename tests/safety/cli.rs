//! The `diff`, `schema` and `assign --at` subcommands, run as the real binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cohortd");
const BASE: &str =
    r#"{"key":"e","status":"running","trafficAllocation":0.5,"variants":["a","b","c"]}"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn diff(old: &Path, new: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("diff")
        .arg(old)
        .arg(new)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn diff_exits_3_on_a_refused_change_and_0_when_acknowledged() {
    let t = tempfile::tempdir().unwrap();
    let old = write(&t.path().join("old"), "e.json", BASE);
    let salted = BASE.replace(r#""variants""#, r#""assignment":{"salt":"x"},"variants""#);
    let new = write(&t.path().join("new"), "e.json", &salted);
    let (code, out, _) = diff(&old, &new, &["--samples", "20000"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("REFUSED") && out.contains("salt changed"),
        "{out}"
    );
    assert!(out.contains("estimate on 20000 synthetic units"), "{out}");
    // Directories work as well as files, and JSON is machine-readable.
    let (code, out, _) = diff(
        old.parent().unwrap(),
        new.parent().unwrap(),
        &["--json", "--samples", "0"],
    );
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["refused"], true);
    let e = &v["experiments"][0];
    assert_eq!(e["key"], "e");
    assert_eq!(e["verdict"], "refused");
    assert_eq!(e["causes"][0]["kind"], "salt_changed");
    assert!((e["impact"]["moved"].as_f64().unwrap() - 0.25 * 2.0 / 3.0).abs() < 1e-9);
    assert!(e.get("estimate").is_none());

    let acked = salted.replace(r#""salt":"x""#, r#""salt":"x","epoch":1"#);
    let new = write(&t.path().join("new"), "e.json", &acked);
    let (code, out, _) = diff(&old, &new, &["--samples", "0"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("acknowledged"), "{out}");
}

#[test]
fn diff_exits_0_for_safe_changes_and_1_for_invalid_input() {
    let t = tempfile::tempdir().unwrap();
    let old = write(t.path(), "old.json", BASE);
    let up = write(t.path(), "up.json", &BASE.replace("0.5", "0.7"));
    let (code, out, _) = diff(&old, &up, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("traffic raised 0.5 -> 0.7"), "{out}");
    let (code, out, _) = diff(&old, &old, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("no experiment changes"));
    let bad = write(
        t.path(),
        "bad.json",
        r#"{"key":"e","status":"running","variants":[]}"#,
    );
    let (code, _, err) = diff(&old, &bad, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.json") && err.contains("variants"),
        "{err}"
    );
    let (code, _, err) = diff(&old, &up, &["--at", "yesterday"]);
    assert_eq!(code, 1);
    assert!(err.contains("--at"), "{err}");
}

#[test]
fn schema_prints_the_generated_schema() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        cohortd::config::schema::schema_text()
    );
}

#[test]
fn assign_at_reconstructs_the_cohort_at_a_time() {
    let t = tempfile::tempdir().unwrap();
    let cfg = write(
        t.path(),
        "r.json",
        r#"{"key":"r","status":"running","trafficAllocation":0,"variants":["a","b"],
            "assignment":{"epoch":2},
            "trafficSchedule":[{"at":"2026-03-01T00:00:00Z","trafficAllocation":1}]}"#,
    );
    let run = |at: &str| {
        let mut child = Command::new(BIN)
            .args(["assign", "-e", "r", "--at", at, "-c"])
            .arg(&cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"{\"targetingKey\":\"u1\"}\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = run("2026-02-28T23:59:59Z");
    assert_eq!(before["enrolled"], false);
    assert_eq!(before["reason"], "not_in_traffic");
    let after = run("2026-03-01T00:00:00Z");
    assert_eq!(after["enrolled"], true);
    assert_eq!(after["epoch"], 2);
    assert!(after["saltFingerprint"].is_string());
    let status = Command::new(BIN)
        .args(["assign", "-e", "r", "--at", "soon", "-c"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(1));
}

#[test]
fn validate_lists_ramp_steps() {
    let t = tempfile::tempdir().unwrap();
    let cfg = write(
        t.path(),
        "r.yaml",
        "key: r\nstatus: running\ntrafficAllocation: 0.01\nvariants: [a, b]\ntrafficSchedule:\n  - {at: \"2000-01-01T00:00:00Z\", trafficAllocation: 0.1}\n  - {at: \"2999-01-01T00:00:00Z\", trafficAllocation: 0.5}\n",
    );
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ramp `r`: 0.01 before 2000-01-01T00:00:00Z, 0.1 from 2000-01-01T00:00:00Z, 0.5 from 2999-01-01T00:00:00Z; now 0.1"),
        "{text}"
    );
    // A decreasing step without acknowledgement is an error naming the field.
    let bad = write(
        t.path(),
        "bad.yaml",
        "key: r\nstatus: running\ntrafficAllocation: 0.5\nvariants: [a]\ntrafficSchedule:\n  - {at: \"2030-01-01T00:00:00Z\", trafficAllocation: 0.2}\n",
    );
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("trafficSchedule[0].trafficAllocation") && err.contains("allowDecrease"),
        "{err}"
    );
}
