//! The cohort guard on a reload judges only the experiments whose guard keys
//! differ (`safety::diff::assigning_diff`, keys made at compile by
//! `snapshot::guard_key`). These tests check that leaving the others out never
//! changes what the guard decides: every experiment left out is one the full
//! comparison (`safety::diff::diff`) finds no cause and no movement for, and
//! every reshuffle, warning and refusal is still found.

use cohortd::safety::diff::{assigning_diff, diff};
use cohortd::safety::guard::{judge, refusals, Verdict};
use serde_json::{json, Value};

use crate::support::compile::compile_value;

const AT: i64 = 1_800_000_000;

/// A document with everything an experiment can depend on: a segment, a
/// declared layer, a holdout, a ramp schedule, metrics and labels.
fn base() -> Value {
    json!({
        "experiments": [
            {"key": "e", "name": "E", "status": "running", "trafficAllocation": 0.2,
             "trafficSchedule": [
                 {"at": "2026-01-01T00:00:00Z", "trafficAllocation": 0.5},
                 {"at": "2028-01-01T00:00:00Z", "trafficAllocation": 0.8}],
             "variants": [{"key": "a", "weight": 2}, {"key": "b", "weight": 1}, {"key": "c", "weight": 0.3}],
             "assignment": {"salt": "s1", "hashKey": "userId"},
             "targeting": {"include": ["region:EU"], "segments": ["beta"]},
             "layer": {"key": "l", "range": [0.0, 0.5]},
             "holdout": "h",
             "metrics": {"primary": {"name": "conversion", "type": "conversion", "direction": "increase"}},
             "labels": {"team": "growth"}},
            {"key": "f", "status": "running", "variants": ["x", "y"]}
        ],
        "segments": {"beta": {"include": ["plan:beta"]}},
        "layers": [{"key": "l", "salt": "ls"}],
        "holdouts": [{"key": "h", "fraction": 0.1}]
    })
}

/// What the guard would decide from a whole diff: the refusals and the
/// verdict and reasons of every experiment not judged safe and silent.
fn decisions(d: &cohortd::safety::diff::SnapshotDiff) -> (String, Vec<String>) {
    let speaking = d
        .experiments
        .iter()
        .filter_map(|e| {
            let j = judge(e);
            (j.verdict != Verdict::Safe || !j.reasons.is_empty())
                .then(|| format!("{} {:?} {:?}", e.key, j.verdict, j.reasons))
        })
        .collect();
    (format!("{:?}", refusals(d)), speaking)
}

/// Compiles `base()` and `base()` changed by `change`; returns whether the
/// guard's diff lists `e`, after checking it decides as the full diff does.
fn judged(change: impl FnOnce(&mut Value)) -> bool {
    let mut next = base();
    change(&mut next);
    let (old, new) = (compile_value(&base()), compile_value(&next));
    let (full, guarded) = (diff(&old, &new, AT), assigning_diff(&old, &new, AT));
    for e in &full.experiments {
        if guarded.experiments.iter().any(|g| g.key == e.key) {
            continue;
        }
        let j = judge(e);
        assert_eq!(j.verdict, Verdict::Safe, "{e:#?}");
        assert!(j.reasons.is_empty() && e.causes.is_empty(), "{e:#?}");
        let i = e.impact;
        assert_eq!((i.moved, i.left, i.joined), (0.0, 0.0, 0.0), "{e:#?}");
    }
    for g in &guarded.experiments {
        assert!(full.experiments.iter().any(|e| e == g), "{g:#?}");
    }
    assert_eq!(decisions(&full), decisions(&guarded));
    guarded.experiments.iter().any(|g| g.key == "e")
}

/// A named change to the document.
type Case = (&'static str, fn(&mut Value));

fn exp(v: &mut Value) -> &mut Value {
    &mut v["experiments"][0]
}

#[test]
fn changes_that_move_nobody_are_left_out() {
    let cases: [Case; 6] = [
        ("name", |v| exp(v)["name"] = json!("renamed")),
        ("description", |v| exp(v)["description"] = json!("why")),
        (
            "metrics",
            |v| {
                exp(v)["metrics"]["secondary"] =
                    json!([{"name": "revenue", "type": "continuous", "direction": "increase"}])
            },
        ),
        ("labels", |v| exp(v)["labels"]["team"] = json!("search")),
        ("srm", |v| exp(v)["srm"] = json!({"strata": "country"})),
        ("formatting", |_| {}),
    ];
    for (what, change) in cases {
        assert!(!judged(change), "{what}: moves nobody, left out");
    }
}

#[test]
fn every_change_that_can_move_a_unit_is_judged() {
    let cases: [Case; 18] = [
        ("salt: refused", |v| {
            exp(v)["assignment"]["salt"] = json!("s2")
        }),
        ("salt with epoch: acknowledged", |v| {
            exp(v)["assignment"] = json!({"salt": "s2", "hashKey": "userId", "epoch": 1})
        }),
        ("hashKey", |v| {
            exp(v)["assignment"]["hashKey"] = json!("deviceId")
        }),
        ("epoch alone", |v| exp(v)["assignment"]["epoch"] = json!(1)),
        ("reweight", |v| exp(v)["variants"][0]["weight"] = json!(1)),
        ("reorder", |v| {
            let vs = exp(v)["variants"].as_array_mut().unwrap();
            vs.swap(0, 1);
        }),
        ("value", |v| {
            exp(v)["variants"][1]["value"] = json!({"color": "red"})
        }),
        ("variant removed", |v| {
            exp(v)["variants"].as_array_mut().unwrap().pop();
        }),
        ("default variant", |v| exp(v)["defaultVariant"] = json!("b")),
        ("winner", |v| exp(v)["winner"] = json!("a")),
        ("traffic", |v| exp(v)["trafficAllocation"] = json!(0.1)),
        ("schedule", |v| {
            exp(v)["trafficSchedule"][1]["trafficAllocation"] = json!(0.6)
        }),
        ("status", |v| exp(v)["status"] = json!("paused")),
        ("targeting", |v| {
            exp(v)["targeting"]["include"] = json!(["region:US"])
        }),
        ("segment definition", |v| {
            v["segments"]["beta"] = json!({"include": ["plan:gamma"]})
        }),
        ("layer range", |v| {
            exp(v)["layer"]["range"] = json!([0.25, 0.75])
        }),
        ("layer salt", |v| v["layers"][0]["salt"] = json!("other")),
        ("holdout fraction", |v| {
            v["holdouts"][0]["fraction"] = json!(0.2)
        }),
    ];
    for (what, change) in cases {
        assert!(judged(change), "{what}: must be judged");
    }
}

#[test]
fn a_rename_beside_a_reshuffle_still_refuses_the_reshuffle() {
    let mut next = base();
    exp(&mut next)["name"] = json!("renamed");
    next["experiments"][1]["assignment"] = json!({"salt": "new"});
    let (old, new) = (compile_value(&base()), compile_value(&next));
    let guarded = assigning_diff(&old, &new, AT);
    let keys: Vec<&str> = guarded.experiments.iter().map(|e| &*e.key).collect();
    assert_eq!(keys, ["f"]);
    let refused = refusals(&guarded).expect("the salt change of `f` is refused");
    assert_eq!(refused.0[0].experiment.as_deref(), Some("f"));
    assert_eq!(refusals(&diff(&old, &new, AT)), Some(refused));
}
