//! The command line as a new user meets it (issue 16): each test runs the built
//! binary the way the user did and checks what was in their way is gone.

mod support;

use std::path::Path;
use support::binary::cohortd;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/configs");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_plain_flag_needs_no_unit() {
    let out = cohortd(
        &["assign", "-c", EXAMPLES, "-e", "payments-enabled"],
        "{\"region\":\"US\"}\n",
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["variant"], "on", "{line}");
    assert_eq!(line["enrolled"], false, "{line}");
}

#[test]
fn assign_answers_every_line_including_blank_ones() {
    let out = cohortd(
        &["assign", EXAMPLES, "-e", "exp-checkout-flow-v3"],
        "{\"userId\":\"a\"}\n\n{\"userId\":\"b\"}\n",
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1]["error"].as_str().unwrap().contains("line 2"));
    assert_eq!(lines[2]["unit"], "b");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unknown_keys_get_a_suggestion_and_a_missing_key_mentions_all() {
    let out = cohortd(&["assign", EXAMPLES, "-e", "exp-checkout-flow-v4"], "");
    assert!(
        text(&out.stderr).contains("did you mean `exp-checkout-flow-v3`?"),
        "{}",
        text(&out.stderr)
    );
    let out = cohortd(&["assign", "--config-dir", EXAMPLES], "");
    assert!(text(&out.stderr).contains("--all"), "{}", text(&out.stderr));
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn list_shows_keys_status_traffic_and_version() {
    let out = cohortd(&["list", EXAMPLES], "");
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(shown.starts_with("version "), "{shown}");
    let row = shown
        .lines()
        .find(|l| l.starts_with("exp-checkout-flow-v3"))
        .unwrap();
    assert!(row.contains("running") && row.contains("25%"), "{row}");
    let out = cohortd(&["list", "--json", "-c", EXAMPLES], "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["key"] == "payments-enabled" && e["status"] == "running"));
}

#[test]
fn validate_reports_every_problem_of_a_file_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    // Seven problems of mixed kinds: a bad enum value, unknown fields at two
    // depths, a wrong type, and checks that only run on a typed experiment.
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"key":"a","status":"runing","trafficAlocation":0.5,"defaultVariant":"zz",
            "winner":"yy","variants":["x",{"key":"y","wieght":2},"x"],
            "assignment":{"epoch":"one"}}"#,
    )
    .unwrap();
    let out = cohortd(&["validate", dir.path().to_str().unwrap()], "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    for expected in [
        "field `status`: unknown status `runing`; did you mean `running`?",
        "field `trafficAlocation`: unknown field `trafficAlocation`; did you mean `trafficAllocation`?",
        "field `variants[1].wieght`: unknown field `wieght`; did you mean `weight`?",
        "field `assignment.epoch`",
        "field `defaultVariant`",
        "field `winner`",
        "duplicate variant key `x`",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in\n{err}");
    }
    assert!(err.contains("7 problems found"), "{err}");
    assert!(!err.contains("unknown variant"), "{err}");
}

#[test]
fn validate_refuses_an_empty_directory_unless_allowed_and_names_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = cohortd(&["validate", d], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--allow-empty"));
    let out = cohortd(&["validate", "--allow-empty", "--config-dir", d], "");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let out = cohortd(&["validate", readme.to_str().unwrap()], "");
    let err = text(&out.stderr);
    assert!(
        err.contains("*.json, *.yaml and *.yml") && !err.contains("invalid JSON"),
        "{err}"
    );
}

#[test]
fn diff_of_a_salt_change_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new");
    std::fs::create_dir(&new).unwrap();
    for f in std::fs::read_dir(EXAMPLES).unwrap() {
        let f = f.unwrap().path();
        let mut t = std::fs::read_to_string(&f).unwrap();
        if f.file_name().unwrap() == "checkout.json" {
            let mut v: serde_json::Value = serde_json::from_str(&t).unwrap();
            v["assignment"]["salt"] = "new-salt".into();
            t = v.to_string();
        }
        std::fs::write(new.join(f.file_name().unwrap()), t).unwrap();
    }
    let out = cohortd(
        &["diff", EXAMPLES, new.to_str().unwrap(), "--samples", "0"],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
    let shown = text(&out.stdout);
    assert!(!shown.contains("alone requires"), "{shown}");
    assert_eq!(shown.matches("fingerprint").count(), 1, "{shown}");
}

#[test]
fn help_lists_unit_id_modes_and_every_serve_env_var() {
    let out = cohortd(&["serve", "--help"], "");
    let help = text(&out.stdout);
    assert!(
        help.contains("[possible values: raw, hash, omit]"),
        "{help}"
    );
    assert!(help.contains("COHORTD_SHUTDOWN_GRACE"), "{help}");
    assert!(
        help.contains("--exposure-spans") && help.contains("COHORTD_EXPOSURE_SPANS"),
        "{help}"
    );
    let bare = text(&cohortd(&[], "").stderr);
    let long = text(&cohortd(&["--help"], "").stdout);
    assert_eq!(bare.lines().next(), long.lines().next());
}
