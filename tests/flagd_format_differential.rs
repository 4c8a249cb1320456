//! Differential test: our flagd evaluator (fractional form v3) against the Python
//! flagd provider's own in-process evaluator (PyPI `openfeature-flagd-core`, pinned
//! in tests/python/requirements.txt) on the same flag file, over thousands of
//! random contexts. Value, variant and reason must be identical; where Python
//! raises, we must return an error too.
//!
//! The flag file (tests/vectors/flagd/all_operators.flagd.json) uses every
//! operator. The interpreter is $COHORTD_PYTHON (the venv .ci/setup-python.sh builds).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use cohortd::config::flagd::parse_flagd_text;
use cohortd::engine::flagd::FractionalForm;
use cohortd::snapshot::flagd::compile_document;
use serde_json::{json, Map, Value};
use support::rng::Rng;
use support::runners::{repo, require_python};

const CONTEXTS: usize = 4000;

fn random_context(r: &mut Rng) -> Map<String, Value> {
    let mut m = Map::new();
    match r.below(10) {
        0 => {}
        1 => {
            m.insert("targetingKey".into(), json!(""));
        }
        _ => {
            m.insert(
                "targetingKey".into(),
                json!(format!("user-{}", r.next_u64() % 1_000_000)),
            );
        }
    }
    if r.percent(85) {
        let local = *r.pick(&["admin", "jo", "sam", "admin.ops", "x"]);
        let domain = *r.pick(&["example.com", "gmail.com", "corp.io", "example.org"]);
        m.insert(
            "email".into(),
            json!(format!("{local}{}@{domain}", r.below(100))),
        );
    }
    if r.percent(90) {
        m.insert("age".into(), json!(r.below(110)));
    }
    if r.percent(70) {
        let score = r.below(20_000) as f64 / 100.0;
        m.insert("score".into(), json!(score));
    }
    if r.percent(80) {
        let v = match r.below(6) {
            0 => format!("{}.{}.{}", r.below(4), r.below(6), r.below(10)),
            1 => format!("v{}.{}", r.below(4), r.below(6)),
            2 => format!("{}", r.below(4)),
            3 => format!(
                "{}.{}.{}-beta.{}",
                r.below(4),
                r.below(6),
                r.below(3),
                r.below(3)
            ),
            4 => format!(
                "{}.{}.{}+build.{}",
                r.below(4),
                r.below(6),
                r.below(3),
                r.below(9)
            ),
            _ => r
                .pick(&["not-a-version", "1.4", "1.4.0", "3.0.0", "2.1.0"])
                .to_string(),
        };
        m.insert("version".into(), json!(v));
    }
    if r.percent(75) {
        m.insert(
            "country".into(),
            json!(*r.pick(&["de", "us", "fr", "dk", "aus", ""])),
        );
    }
    if r.percent(70) {
        let n = r.below(4);
        let tags: Vec<Value> = (0..n)
            .map(|_| json!(*r.pick(&["beta", "a", "b", "zzz", "x", "q"])))
            .collect();
        m.insert("tags".into(), Value::Array(tags));
    }
    if r.percent(70) {
        let n = r.below(5);
        let nums: Vec<Value> = (0..n).map(|_| json!(r.below(9))).collect();
        m.insert("nums".into(), Value::Array(nums));
    }
    if r.percent(80) {
        let id = match r.below(8) {
            0 => json!(r.below(1000)),
            1 => json!(r.below(1000) as f64 + 0.5),
            2 => json!(r.below(100) as f64),
            3 => json!(r.percent(50)),
            4 => json!([r.below(10), "k"]),
            5 => json!({"b": r.below(3), "a": "z", "long-key": [1.5, null]}),
            6 => json!(-(r.below(1 << 40) as i64)),
            _ => json!(format!("acct-{}", r.below(50))),
        };
        m.insert("account".into(), json!({ "id": id }));
    }
    if r.percent(60) {
        m.insert(
            "user".into(),
            json!({ "tier": *r.pick(&["gold", "silver", "bronze"]) }),
        );
    }
    if r.percent(70) {
        m.insert("weight".into(), json!(r.below(30)));
    }
    m
}

#[test]
fn our_evaluator_matches_openfeature_flagd_core_on_random_contexts() {
    let file = repo().join("tests/vectors/flagd/all_operators.flagd.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let doc = parse_flagd_text(&file, &text, false).expect("fixture parses");
    let flags = compile_document(&file, &doc).expect("fixture compiles");

    let mut r = Rng::new(0x5eed_f1a9_d000_0011);
    let contexts: Vec<Map<String, Value>> = (0..CONTEXTS).map(|_| random_context(&mut r)).collect();
    let mut input = String::new();
    for c in &contexts {
        input.push_str(&serde_json::to_string(c).unwrap());
        input.push('\n');
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut child = Command::new(require_python())
        .arg(repo().join("tests/python/flagd_core_eval.py"))
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), contexts.len());

    let mut mismatches = Vec::new();
    let mut matched_by_reason = std::collections::BTreeMap::<String, usize>::new();
    for (ctx, line) in contexts.iter().zip(lines) {
        let theirs: Map<String, Value> = serde_json::from_str(line).unwrap();
        for flag in &flags {
            let want = &theirs[flag.key()];
            let got = match flag.evaluate(ctx, now, FractionalForm::V3) {
                Ok(o) => json!({
                    "value": o.value.cloned().unwrap_or(Value::Null),
                    "variant": o.variant,
                    "reason": o.reason.as_str(),
                }),
                Err(_) => json!({ "error": true }),
            };
            let same = match (want.get("error"), got.get("error")) {
                (Some(_), Some(_)) => true,
                (None, None) => want == &got,
                _ => false,
            };
            if same {
                let reason = want
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("ERROR");
                let label = format!("{reason}/{}", want.get("variant").unwrap_or(&Value::Null));
                *matched_by_reason
                    .entry(format!("{}:{label}", flag.key()))
                    .or_default() += 1;
            } else if mismatches.len() < 20 {
                mismatches.push(format!(
                    "flag {} ctx {}\n  python: {want}\n  ours:   {got}",
                    flag.key(),
                    Value::Object(ctx.clone())
                ));
            } else {
                mismatches.push(String::new());
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches; first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The contexts must exercise each flag's interesting outcomes, or the
    // comparison proves little: each of these flags must show two or more
    // distinct (reason, variant) outcomes.
    for key in [
        "split",
        "split-by-email",
        "split-typed",
        "split-computed",
        "bad-variant",
        "missing",
    ] {
        assert!(
            matched_by_reason
                .keys()
                .filter(|k| k.starts_with(&format!("{key}:")))
                .count()
                >= 2,
            "flag {key} saw only {:?}",
            matched_by_reason
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{key}:")))
                .collect::<Vec<_>>()
        );
    }
}
