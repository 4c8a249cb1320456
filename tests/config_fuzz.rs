//! Fuzzing the config pipeline with proptest (what CI runs; `fuzz/` holds the
//! cargo-fuzz target for longer runs): arbitrary bytes and arbitrary JSON-ish
//! structures go through `parse_file`, `Snapshot::compile` and evaluation with
//! arbitrary contexts. Nothing may panic, every rejection must carry at least one
//! error naming the file, and every accepted config must evaluate.

mod support;

use std::path::Path;

use cohortd::config::{parse_file, SourceFile};
use cohortd::engine::{EvalOptions, Sticky};
use cohortd::transport::convert::json_object_to_struct;
use cohortd::Snapshot;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use support::engine::proptest_config;

const NAMES: &[&str] = &["c.json", "c.yaml", "c.yml"];

/// Field names the config format knows, plus near misses, so random objects often
/// hit real code paths.
const KEYS: &[&str] = &[
    "experimentId",
    "key",
    "name",
    "status",
    "trafficAllocation",
    "variants",
    "weight",
    "value",
    "defaultVariant",
    "winner",
    "assignment",
    "strategy",
    "hashKey",
    "salt",
    "epoch",
    "targeting",
    "include",
    "exclude",
    "rules",
    "attribute",
    "op",
    "segments",
    "layer",
    "range",
    "holdout",
    "holdouts",
    "fraction",
    "layers",
    "experiments",
    "metrics",
    "primary",
    "secondary",
    "guardrails",
    "threshold",
    "action",
    "evaluation",
    "alpha",
    "maxPeeks",
    "rollback",
    "labels",
    "description",
    "type",
    "direction",
    "userId",
    "targetingKey",
    "region",
    "x",
    "",
];

const WORDS: &[&str] = &[
    "running",
    "draft",
    "paused",
    "stopped",
    "completed",
    "consistent_hash",
    "control",
    "a",
    "b",
    "region:US",
    "internal:true",
    "equals",
    "not_in",
    "in",
    "semver_gte",
    "matches",
    "exists",
    "lt",
    "2.3.0",
    "v1.0.0-beta",
    "(",
    "^a.*$",
    "userId",
    "targetingKey",
    "L",
    "h",
    "",
    ":",
    "é",
    "\u{0}",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![0.0, 0.25, 0.5, 1.0, -1.0, 1.5, 1e-300, 1e308, -0.0])
            .prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

fn json_ish() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Experiment-shaped objects with random field values: most reach `compile`.
fn experiment_ish() -> impl Strategy<Value = Value> {
    let variants = prop_oneof![
        prop::collection::vec(prop::sample::select(WORDS).prop_map(Value::from), 0..5)
            .prop_map(Value::Array),
        prop::collection::vec(
            (prop::sample::select(WORDS), scalar(), scalar())
                .prop_map(|(k, w, v)| { serde_json::json!({"key": k, "weight": w, "value": v}) }),
            0..5
        )
        .prop_map(Value::Array),
        json_ish(),
    ];
    (
        prop::sample::select(WORDS),
        prop::sample::select(vec!["running", "draft", "stopped", "paused", "completed"]),
        variants,
        prop::collection::vec((prop::sample::select(KEYS), json_ish()), 0..4),
    )
        .prop_map(|(key, status, variants, extra)| {
            let mut m = Map::new();
            m.insert("key".into(), key.into());
            m.insert("status".into(), status.into());
            m.insert("variants".into(), variants);
            for (k, v) in extra {
                m.insert(k.to_string(), v);
            }
            Value::Object(m)
        })
}

fn context() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((prop::sample::select(KEYS), scalar()), 0..8)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Parses, compiles and evaluates; the only acceptable outcomes are a snapshot
/// that evaluates, or located errors.
fn run(name: &str, bytes: &[u8], contexts: &[Map<String, Value>]) -> Result<(), TestCaseError> {
    let path = Path::new(name);
    let doc = match parse_file(path, bytes) {
        Ok(doc) => doc,
        Err(errs) => {
            prop_assert!(!errs.is_empty(), "rejected without an error");
            prop_assert!(errs.iter().all(|e| e.file == path));
            return Ok(());
        }
    };
    let snap = match Snapshot::compile(&[SourceFile {
        path: path.into(),
        doc,
    }]) {
        Ok(s) => s,
        Err(errs) => {
            prop_assert!(!errs.0.is_empty(), "rejected without an error");
            prop_assert!(errs.0.iter().all(|e| e.file == path));
            return Ok(());
        }
    };
    for ctx in contexts {
        let proto = json_object_to_struct(ctx);
        for e in snap.experiments() {
            let a = e.evaluate(ctx, EvalOptions::default(), &mut ());
            let b = e.evaluate(&proto, EvalOptions::default(), &mut ());
            prop_assert_eq!(&a.variant.key, &b.variant.key);
            prop_assert_eq!(a.reason, b.reason);
            let sticky = EvalOptions {
                sticky: Some(Sticky {
                    variant: &e.variants[0].key,
                }),
                ..EvalOptions::default()
            };
            let _ = snap.assign(&e.key, ctx, sticky);
        }
        snap.assign_all(ctx, |_| {});
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        name in prop::sample::select(NAMES),
    ) {
        run(name, &bytes, &[])?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}", name in prop::sample::select(NAMES)) {
        run(name, text.as_bytes(), &[])?;
    }

    #[test]
    fn json_ish_structures_never_panic(
        doc in prop_oneof![
            json_ish(),
            experiment_ish(),
            prop::collection::vec(experiment_ish(), 0..4).prop_map(Value::Array),
            (prop::collection::vec(experiment_ish(), 0..4), json_ish()).prop_map(|(e, extra)| {
                serde_json::json!({"experiments": e, "segments": extra.clone(), "layers": extra.clone(), "holdouts": extra})
            }),
        ],
        contexts in prop::collection::vec(context(), 1..4),
    ) {
        run("c.json", doc.to_string().as_bytes(), &contexts)?;
        if let Ok(yaml) = serde_norway::to_string(&doc) {
            run("c.yaml", yaml.as_bytes(), &contexts)?;
        }
    }
}

/// Adversarial inputs that have bitten YAML and JSON parsers elsewhere (deep
/// nesting, alias expansion bombs, non-finite numbers, complex keys, overflowing
/// literals) are rejected with errors, quickly and without panicking.
#[test]
fn adversarial_inputs_are_rejected_cleanly() {
    let deep_json = "[".repeat(100_000);
    let deep_yaml = "- ".repeat(10_000) + "x";
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        laughs += &format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = if i == 1 {
                String::new()
            } else {
                (i - 1).to_string()
            }
        );
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("d.json", deep_json.into_bytes()),
        ("d.yaml", deep_yaml.into_bytes()),
        ("l.yaml", laughs.into_bytes()),
        ("n.yaml", b"key: x\nstatus: running\ntrafficAllocation: .nan\nvariants: [a]\n".to_vec()),
        ("i.yaml", b"key: x\nstatus: running\nvariants: [{key: a, weight: .inf}]\n".to_vec()),
        ("k.yaml", b"? [a, b]\n: c\n".to_vec()),
        ("big.json", format!("{{\"key\":\"x\",\"status\":\"running\",\"variants\":[\"a\"],\"trafficAllocation\":1{}}}", "0".repeat(400)).into_bytes()),
    ];
    for (name, bytes) in cases {
        let path = Path::new(name);
        let result = parse_file(path, &bytes)
            .map_err(|e| e.len())
            .and_then(|doc| {
                Snapshot::compile(&[SourceFile {
                    path: path.into(),
                    doc,
                }])
                .map_err(|e| e.0.len())
            });
        match result {
            Ok(_) => panic!("{name} must be rejected"),
            Err(n) => assert!(n > 0, "{name} rejected without an error"),
        }
    }
}
