//! Cross-release stability: the committed test vectors in
//! `tests/vectors/bucketing.json` must be reproduced exactly by the engine, and by
//! the independent pure-Python implementation in `tests/python/bucketing_reference.py`
//! written from the algorithm guide (docs/algorithm.md) (which proves that text complete).
//!
//! The vectors were generated once by this engine. Never regenerate them to make a
//! failing test pass: a mismatch means assignments changed for real users. (An
//! intended algorithm change needs a new `cohortd/vN` domain tag and new vectors:
//! `COHORTD_REGENERATE_VECTORS=1 cargo test --test engine_vectors -- --ignored`.)

mod support;

use std::path::{Path, PathBuf};

use cohortd::engine::bucket::{self, DrawKey};
use cohortd::engine::EvalOptions;
use serde_json::{json, Value};
use support::compile::compile_value;
use support::context::Unit;
use support::engine::Kinds;

fn vectors_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/bucketing.json")
}

/// What the engine computes for one case: the traffic slot, whether the unit is
/// enrolled, the variant served, and each variant's raw draw.
fn compute_case(salt: &str, unit: &str, traffic: f64, variants: &Value) -> Value {
    let snap = compile_value(&json!({
        "key": "vector", "status": "running", "trafficAllocation": traffic,
        "variants": variants, "assignment": {"hashKey": "unit", "salt": salt}
    }));
    let e = snap.experiment("vector").unwrap();
    let mut trace = Kinds::default();
    let ctx = Unit {
        key: "unit",
        id: unit,
        extra: &[],
    };
    let a = e.evaluate(&ctx, EvalOptions::default(), &mut trace);
    let draws: Vec<String> = e
        .variants
        .iter()
        .map(|v| {
            let d = DrawKey::derive(bucket::purpose::VARIANT, salt, &v.key).draw(unit.as_bytes());
            format!("{d:016x}")
        })
        .collect();
    let traffic_draw = DrawKey::derive(bucket::purpose::TRAFFIC, salt, "").draw(unit.as_bytes());
    assert_eq!(trace.traffic_slot, Some(bucket::slot(traffic_draw)));
    json!({
        "trafficDraw": format!("{traffic_draw:016x}"),
        "slot": trace.traffic_slot.unwrap(),
        "enrolled": a.enrolled,
        "variant": &*a.variant.key,
        "variantDraws": draws,
    })
}

fn compute_range(purpose: &str, salt: &str, unit: &str) -> Value {
    let d = DrawKey::derive(purpose, salt, "").draw(unit.as_bytes());
    json!({"draw": format!("{d:016x}"), "slot": bucket::slot(d)})
}

/// The inputs of every vector: salts and units of many lengths (every seahash tail
/// case), non-ASCII ids, equal, unequal, fractional and zero weights, and traffic
/// from 0 to 1.
fn inputs() -> Vec<(String, String, f64, Value)> {
    let shapes = [
        json!(["control", "variant-a", "variant-b"]),
        json!([{"key": "a", "weight": 1}, {"key": "b", "weight": 2}, {"key": "c", "weight": 7}]),
        json!([{"key": "on", "weight": 1}, {"key": "off", "weight": 0}]),
        json!([{"key": "x", "weight": 0.5}, {"key": "y", "weight": 0.25}, {"key": "z", "weight": 3.75}, {"key": "w", "weight": 1e-3}]),
        json!(["only"]),
        json!(["b", "a"]),
    ];
    let salts = [
        "prod-experiment-2024-q3".to_string(),
        "s".to_string(),
        "exp-1".to_string(),
        "a-salt-longer-than-thirty-two-bytes-to-cover-blocks".to_string(),
        "ünïcødé-salt-✓".to_string(),
    ];
    let traffics = [0.25, 1.0, 0.5, 0.1, 0.0, 0.999_999, 0.333_333_333_333_333_3];
    // Prefixes of one string of distinct bytes, 1 to 40 bytes long: every seahash
    // tail length, and byte order inside a word matters.
    let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";
    let mut units: Vec<String> = (1..=alphabet.len())
        .map(|n| alphabet[..n].to_string())
        .collect();
    units.extend(
        [
            "user-1",
            "user-2",
            "42",
            "00042",
            "-1.5",
            "ユーザー",
            "😀",
            "a b",
            "x\u{0}y",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    for i in 0..24 {
        units.push(format!("user-{:08}", i * 7919));
    }
    let mut out = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let salt = &salts[i % salts.len()];
        let traffic = traffics[i % traffics.len()];
        let shape = &shapes[i % shapes.len()];
        out.push((salt.clone(), unit.clone(), traffic, shape.clone()));
    }
    out
}

fn generate() -> Value {
    let cases: Vec<Value> = inputs()
        .into_iter()
        .map(|(salt, unit, traffic, variants)| {
            let expected = compute_case(&salt, &unit, traffic, &variants);
            json!({"salt": salt, "unit": unit, "traffic": traffic, "variants": variants, "expected": expected})
        })
        .collect();
    let ranges: Vec<Value> = [
        ("layer", "search-layer-2026"),
        ("holdout", "global-holdout"),
    ]
    .iter()
    .flat_map(|(purpose, salt)| {
        ["user-1", "user-2", "u", "a-unit-id-of-exactly-32-bytes!!!"]
            .iter()
            .map(move |unit| {
                json!({"purpose": purpose, "salt": salt, "unit": unit,
                           "expected": compute_range(purpose, salt, unit)})
            })
    })
    .collect();
    json!({
        "about": "cohortd bucketing test vectors (algorithm cohortd/v1, see README 'The bucketing algorithm'). Generated once; never edit or regenerate to make a test pass. Draws are hex u64; slot = draw >> 32; variant is the variant served (the first listed when not enrolled).",
        "cases": cases,
        "ranges": ranges,
    })
}

fn committed() -> Value {
    let text = std::fs::read_to_string(vectors_path()).expect("tests/vectors/bucketing.json");
    serde_json::from_str(&text).expect("vectors are JSON")
}

/// The engine reproduces every committed vector: slots, enrolment, variants, draws.
#[test]
fn engine_reproduces_committed_vectors() {
    let v = committed();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 60, "too few vectors: {}", cases.len());
    for c in cases {
        let got = compute_case(
            c["salt"].as_str().unwrap(),
            c["unit"].as_str().unwrap(),
            c["traffic"].as_f64().unwrap(),
            &c["variants"],
        );
        assert_eq!(got, c["expected"], "vector {c}");
    }
    for r in v["ranges"].as_array().unwrap() {
        let got = compute_range(
            r["purpose"].as_str().unwrap(),
            r["salt"].as_str().unwrap(),
            r["unit"].as_str().unwrap(),
        );
        assert_eq!(got, r["expected"], "range vector {r}");
    }
    // Not degenerate: vectors cover enrolled and not-enrolled units and every variant
    // of the three-variant template.
    let enrolled = cases
        .iter()
        .filter(|c| c["expected"]["enrolled"] == true)
        .count();
    assert!(enrolled > 10 && enrolled < cases.len() - 10, "{enrolled}");
}

/// The committed inputs are exactly the generated ones (nobody edited the file by
/// hand to drop a case).
#[test]
fn committed_vectors_cover_the_generated_inputs() {
    let v = committed();
    let cases = v["cases"].as_array().unwrap();
    let want = inputs();
    assert_eq!(cases.len(), want.len());
    for (c, (salt, unit, traffic, variants)) in cases.iter().zip(want) {
        assert_eq!(c["salt"], json!(salt));
        assert_eq!(c["unit"], json!(unit));
        assert_eq!(c["traffic"], json!(traffic));
        assert_eq!(c["variants"], variants);
    }
}

/// An independent implementation of the README's algorithm, in pure Python (its
/// own seahash, `math.log`), reproduces the same vectors.
#[test]
fn python_reference_reproduces_committed_vectors() {
    let python = std::env::var("COHORTD_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/bucketing_reference.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(vectors_path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set COHORTD_PYTHON): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python reference failed:\n{stdout}\n{stderr}"
    );
    let n = committed()["cases"].as_array().unwrap().len();
    assert!(
        stdout.contains(&format!("{n} cases ok")),
        "unexpected output: {stdout}"
    );
}

/// The worked examples in the algorithm guide (docs/algorithm.md) are what the engine does.
#[test]
fn readme_examples_hold() {
    let seeds = DrawKey::derive(bucket::purpose::TRAFFIC, "prod-experiment-2024-q3", "");
    assert_eq!(
        format!("{seeds:x?}"),
        "DrawKey([de57c3a4f72146f3, aab36da608ba97ff, 3429e7cdac4a3238, 6fd45d116fe5c9db])"
    );
    assert_eq!(format!("{:016x}", seahash::hash(b"")), "c920ca43256fdcb9");
    assert_eq!(
        format!("{:016x}", seahash::hash(b"cohortd")),
        "d8ac4ab35ab97919"
    );
    let template = json!(["control", "variant-a", "variant-b"]);
    let rows = [
        (
            "user-1",
            "fb80a75d33f3216b",
            4219512669u32,
            false,
            "control",
        ),
        ("user-2", "c4fdb6c8f116db21", 3304961736, false, "control"),
        ("user-3", "3b4e8ad00c6aef95", 995003088, true, "control"),
        ("user-18", "0e2ba5a58f9e991f", 237741477, true, "variant-b"),
        ("user-36", "30c48b22f7b52dbd", 818187042, true, "variant-a"),
    ];
    for (unit, draw, slot, enrolled, variant) in rows {
        let got = compute_case("prod-experiment-2024-q3", unit, 0.25, &template);
        assert_eq!(got["trafficDraw"], draw, "{unit}");
        assert_eq!(got["slot"], slot, "{unit}");
        assert_eq!(got["enrolled"], enrolled, "{unit}");
        assert_eq!(got["variant"], variant, "{unit}");
    }
    assert_eq!(bucket::threshold(0.25), 1_073_741_824);
}

/// Writes the vectors file. Ignored: run only for a deliberate algorithm change.
#[test]
#[ignore]
fn regenerate_vectors() {
    if std::env::var_os("COHORTD_REGENERATE_VECTORS").is_none() {
        return;
    }
    let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    std::fs::write(vectors_path(), text).unwrap();
}
