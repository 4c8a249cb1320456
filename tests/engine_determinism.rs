//! Guarantee 1: assignment is a pure function of (config content, unit). The same
//! input gives the same output on every call, in every snapshot compiled from the
//! same content, through every context representation (JSON for the CLI, protobuf
//! `Struct` for gRPC), and in separate processes (`cohortd assign`).

mod support;

use std::path::Path;

use cohortd::config::{load_path, ConfigDocument};
use cohortd::engine::{EvalOptions, Reason};
use cohortd::transport::convert::json_object_to_struct;
use cohortd::Snapshot;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use support::binary::cohortd_text;
use support::compile::compile_value;
use support::engine::{proptest_config, unit_id};

fn examples_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/configs"))
}

fn examples() -> Snapshot {
    Snapshot::load(examples_dir()).expect("bundled examples are valid")
}

/// `(experiment, variant, enrolled, reason)` for every served experiment.
type Row = (String, String, bool, &'static str);

fn assign_everything<C: cohortd::Context>(snap: &Snapshot, ctx: &C) -> Vec<Row> {
    snap.served()
        .map(|e| {
            let a = e.evaluate(ctx, EvalOptions::default(), &mut ());
            (
                e.key.to_string(),
                a.variant.key.to_string(),
                a.enrolled,
                a.reason.as_str(),
            )
        })
        .collect()
}

/// Contexts that exercise every example: ids as strings and numbers, targeting
/// attributes that match or not, missing units.
fn context() -> impl Strategy<Value = Map<String, Value>> {
    let id = prop_oneof![
        "[a-z0-9-]{1,20}".prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        Just(Value::Null),
        Just(Value::from("")),
    ];
    (
        id.clone(),
        id,
        prop::sample::select(vec!["US", "EU"]),
        prop::sample::select(vec!["free", "pro"]),
        any::<bool>(),
        prop::sample::select(vec!["1.0.0", "2.3.0", "2.10.1", "x"]),
        prop::sample::select(vec!["a@example.com", "b@other.org"]),
    )
        .prop_map(|(user, tk, region, account, internal, app, email)| {
            let v = json!({
                "userId": user, "targetingKey": tk, "region": region, "accountType": account,
                "internal": internal, "appVersion": app, "email": email
            });
            v.as_object().unwrap().clone()
        })
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// Same input, same output: twice on one snapshot, on a second snapshot compiled
    /// from the same files, and through a protobuf `Struct` (the gRPC path).
    #[test]
    fn same_input_same_output(ctx in context()) {
        static SNAPSHOTS: std::sync::OnceLock<(Snapshot, Snapshot)> = std::sync::OnceLock::new();
        let (a, b) = SNAPSHOTS.get_or_init(|| (examples(), examples()));
        prop_assert_eq!(a.version(), b.version());
        let first = assign_everything(a, &ctx);
        prop_assert_eq!(&first, &assign_everything(a, &ctx));
        prop_assert_eq!(&first, &assign_everything(b, &ctx));
        prop_assert_eq!(&first, &assign_everything(a, &json_object_to_struct(&ctx)));
        // The assign-all helper gives the same answers, in the same order.
        let mut all = Vec::new();
        a.assign_all(&ctx, |x| {
            all.push((
                x.experiment.key.to_string(),
                x.variant.key.to_string(),
                x.enrolled,
                x.reason.as_str(),
            ))
        });
        prop_assert_eq!(&first, &all);
    }
}

/// A numeric unit id and its decimal string are the same unit.
#[test]
fn numeric_and_string_ids_are_the_same_unit() {
    let snap = examples();
    for i in 0..500u64 {
        let n = json!({"targetingKey": i, "userId": i * 3});
        let s = json!({"targetingKey": i.to_string(), "userId": (i * 3).to_string()});
        assert_eq!(
            assign_everything(&snap, n.as_object().unwrap()),
            assign_everything(&snap, s.as_object().unwrap())
        );
    }
}

/// The version depends only on content: the same experiments in one file or
/// several, in any order and any format, give the same version; changing one
/// weight changes the version and that experiment's fingerprint only.
#[test]
fn version_is_derived_from_content_only() {
    let files = load_path(examples_dir()).unwrap();
    let original = Snapshot::compile(&files).unwrap();
    let mut merged = ConfigDocument::default();
    for f in files.iter().rev() {
        merged
            .experiments
            .extend(f.doc.experiments.iter().rev().cloned());
        merged.segments.extend(f.doc.segments.clone());
        merged.layers.extend(f.doc.layers.clone());
        merged.holdouts.extend(f.doc.holdouts.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("all.json"),
        serde_json::to_string(&merged).unwrap(),
    )
    .unwrap();
    let one_file = Snapshot::load(dir.path()).unwrap();
    assert_eq!(original.version(), one_file.version());

    let mut yaml = merged.clone();
    yaml.experiments[0].variants[0].weight = Some(3.0);
    let changed_key = yaml.experiments[0].experiment_id.clone();
    std::fs::remove_file(dir.path().join("all.json")).unwrap();
    std::fs::write(
        dir.path().join("all.yaml"),
        serde_norway::to_string(&yaml).unwrap(),
    )
    .unwrap();
    let changed = Snapshot::load(dir.path()).unwrap();
    assert_ne!(original.version(), changed.version());
    for e in original.experiments() {
        let other = changed.experiment(&e.key).unwrap();
        assert_eq!(
            e.fingerprint == other.fingerprint,
            *e.key != *changed_key,
            "fingerprint of {}",
            e.key
        );
    }
}

fn cli_contexts(n: u64) -> Vec<Map<String, Value>> {
    (0..n)
        .map(|i| {
            let mut m = Map::new();
            m.insert("userId".into(), json!(unit_id(i)));
            if i % 3 != 0 {
                m.insert("targetingKey".into(), json!(format!("tk-{i}")));
            }
            m.insert("region".into(), json!(if i % 5 == 0 { "EU" } else { "US" }));
            m.insert("accountType".into(), json!("free"));
            m.insert("internal".into(), json!(i % 17 == 0));
            m.insert("appVersion".into(), json!("2.4.0"));
            m.insert("email".into(), json!(format!("u{i}@example.com")));
            m
        })
        .collect()
}

/// Assignments computed by two separate `cohortd assign --all` processes are
/// identical to each other and to the in-process ones.
#[test]
fn separate_processes_agree_with_in_process_assignment() {
    let contexts = cli_contexts(3_000);
    let input: String = contexts
        .iter()
        .map(|c| serde_json::to_string(c).unwrap() + "\n")
        .collect();
    let dir = examples_dir().to_str().unwrap();
    let (code1, out1, err1) = cohortd_text(&["assign", "--config-dir", dir, "--all"], &input);
    let (code2, out2, _) = cohortd_text(&["assign", "--config-dir", dir, "--all"], &input);
    assert_eq!(code1, 0, "{err1}");
    assert_eq!(code2, 0);
    assert_eq!(out1, out2, "two processes disagree");

    let snap = examples();
    let lines: Vec<&str> = out1.lines().collect();
    assert_eq!(lines.len(), contexts.len());
    let mut reasons = std::collections::BTreeSet::new();
    for (ctx, line) in contexts.iter().zip(lines) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["version"], snap.version());
        let got: Vec<Row> = snap
            .served()
            .map(|e| {
                let a = &v["assignments"][&*e.key];
                let reason = Reason::ALL
                    .into_iter()
                    .find(|r| a["reason"] == r.as_str())
                    .unwrap_or_else(|| panic!("unknown reason in {a}"));
                reasons.insert(reason.as_str());
                (
                    e.key.to_string(),
                    a["variant"].as_str().unwrap().to_string(),
                    a["enrolled"].as_bool().unwrap(),
                    reason.as_str(),
                )
            })
            .collect();
        assert_eq!(got, assign_everything(&snap, ctx), "line {line}");
    }
    // The run covered the interesting outcomes, not just one.
    for r in [
        "split",
        "not_in_traffic",
        "targeting_miss",
        "missing_unit",
        "winner",
        "not_in_layer",
        "holdout",
    ] {
        assert!(reasons.contains(r), "no `{r}` among {reasons:?}");
    }
}

/// `--experiment` gives the same answers as `--all` for that experiment, with the
/// fields analysts need.
#[test]
fn single_experiment_mode_matches() {
    let contexts = cli_contexts(500);
    let input: String = contexts
        .iter()
        .map(|c| serde_json::to_string(c).unwrap() + "\n")
        .collect();
    let dir = examples_dir().to_str().unwrap();
    let key = "exp-checkout-flow-v3";
    let (code, out, err) = cohortd_text(
        &["assign", "--config-dir", dir, "--experiment", key],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    let snap = examples();
    for (ctx, line) in contexts.iter().zip(out.lines()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let a = snap.assign(key, ctx, EvalOptions::default()).unwrap();
        assert_eq!(v["experiment"], key);
        assert_eq!(v["variant"], &*a.variant.key);
        assert_eq!(v["enrolled"], a.enrolled);
        assert_eq!(v["reason"], a.reason.as_str());
        assert_eq!(v["version"], snap.version());
        assert_eq!(v["unit"], ctx["userId"]);
    }
}

/// Bad input lines get an error line (so output stays aligned with input) and a
/// non-zero exit; an unknown experiment is refused before reading input.
#[test]
fn assign_cli_reports_bad_input() {
    let dir = examples_dir().to_str().unwrap();
    let (code, out, err) = cohortd_text(
        &["assign", "--config-dir", dir, "-e", "exp-checkout-flow-v3"],
        "{\"userId\":\"u1\"}\nnot json\n[1,2]\n{\"userId\":\"u2\"}\n",
    );
    assert_eq!(code, 1);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0]["variant"].is_string());
    assert!(lines[1]["error"].as_str().unwrap().contains("line 2"));
    assert!(lines[2]["error"].is_string());
    assert!(lines[3]["variant"].is_string());
    assert!(err.contains("2 input line(s)"), "{err}");
    let (code, out, err) = cohortd_text(&["assign", "--config-dir", dir, "-e", "nope"], "{}\n");
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("unknown experiment `nope`"), "{err}");
}

/// Twelve experiments over six unit attributes (more than the assign-all helper
/// caches), some with layers and holdouts drawing on yet another attribute.
fn many_unit_attributes() -> Snapshot {
    let exps: Vec<Value> = (0..12)
        .map(|i| {
            let mut e = json!({
                "key": format!("e{i}"), "status": if i == 5 { "stopped" } else { "running" },
                "trafficAllocation": 0.7, "variants": ["a", "b", "c"],
                "assignment": {"hashKey": format!("k{}", i % 6)},
            });
            if i % 4 == 0 {
                e["holdout"] = json!("h");
            }
            if i % 3 == 0 {
                e["layer"] = json!({"key": format!("L{i}"), "range": [0.0, 0.8]});
            }
            e
        })
        .collect();
    compile_value(&json!({
        "experiments": exps,
        "holdouts": [{"key": "h", "fraction": 0.2, "hashKey": "device"}]
    }))
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// `assign_all` gives exactly what evaluating each experiment gives, whatever
    /// attributes the context has (numbers, strings, missing, empty).
    #[test]
    fn assign_all_equals_evaluating_each(
        attrs in prop::collection::vec(
            (prop::sample::select(vec!["k0", "k1", "k2", "k3", "k4", "k5", "device"]),
             prop_oneof![
                 "[a-z0-9]{0,6}".prop_map(Value::from),
                 any::<i32>().prop_map(Value::from),
                 Just(Value::Null),
             ]),
            0..10,
        )
    ) {
        static SNAP: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
        let snap = SNAP.get_or_init(many_unit_attributes);
        let ctx: Map<String, Value> = attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut all = Vec::new();
        snap.assign_all(&ctx, |a| {
            all.push((a.experiment.key.to_string(), a.variant.key.to_string(), a.enrolled, a.reason.as_str()))
        });
        prop_assert_eq!(all, assign_everything(snap, &ctx));
    }
}
