//! The optimized engine against a straightforward reference evaluation, on a
//! generated population: 1,000 experiments (shared and unique targeting
//! conditions, layers declared with their own unit attribute, holdouts, shared
//! salts, zero and tiny weights, paused and stopped experiments, units of every
//! length) and thousands of contexts (missing, numeric and long unit ids,
//! attributes of every type). Every assignment of `Snapshot::assign_all` (JSON
//! and protobuf `Struct` contexts) and of `Experiment::evaluate` (JSON, `Struct`
//! and the server's wire-decoded context) must equal the
//! reference's, which follows the algorithm as README documents it: one lookup
//! per attribute, every score computed with its logarithm, no memo, no pruning.
//!
//! `COHORTD_REFERENCE_CONTEXTS=10000` runs the full 1,000 x 10,000 population
//! (release: `cargo test --release --test engine_reference`); the default, 1,000
//! contexts (3 million assignments checked), keeps a debug run near a minute on
//! a loaded 2-core box.

mod support;

use std::cmp::Ordering;

use cohortd::engine::bucket::{purpose, rendezvous_score, slot, threshold, DrawKey};
use cohortd::engine::{Context, EvalOptions, Reason};
use cohortd::transport::convert::json_object_to_struct;
use cohortd::transport::limits::Limits;
use cohortd::transport::wire::context::WireContext;
use cohortd::Snapshot;
use prost::Message;
use serde_json::{json, Map, Value};
use support::compile::compile_value;
use support::rng::Rng;

const EXPERIMENTS: usize = 1000;

/// A targeting condition as the reference reads it.
#[derive(Clone)]
enum RefCond {
    /// `attribute:value` (include; exclude negates).
    Eq(&'static str, String, bool),
    In(&'static str, Vec<String>, bool),
    Gt(&'static str, f64),
    SemverGte(&'static str, &'static str),
    Exists(&'static str, bool),
}

impl RefCond {
    /// The condition in config form: `("include" | "exclude" | "rules", value)`.
    fn config(&self) -> (&'static str, Value) {
        match self {
            RefCond::Eq(a, v, false) => ("include", json!(format!("{a}:{v}"))),
            RefCond::Eq(a, v, true) => ("exclude", json!(format!("{a}:{v}"))),
            RefCond::In(a, vs, neg) => (
                "rules",
                json!({"attribute": a, "op": if *neg { "not_in" } else { "in" }, "value": vs}),
            ),
            RefCond::Gt(a, n) => ("rules", json!({"attribute": a, "op": "gt", "value": n})),
            RefCond::SemverGte(a, v) => (
                "rules",
                json!({"attribute": a, "op": "semver_gte", "value": v}),
            ),
            RefCond::Exists(a, neg) => (
                "rules",
                json!({"attribute": a, "op": if *neg { "not_exists" } else { "exists" }}),
            ),
        }
    }

    fn holds(&self, ctx: &Map<String, Value>) -> bool {
        let equals = |v: &Value, text: &str| match v {
            Value::String(s) => s == text,
            Value::Number(n) => text.trim().parse::<f64>().ok() == n.as_f64(),
            Value::Bool(b) => b.to_string() == text,
            Value::Null => text == "null",
            _ => false,
        };
        let (attr, negate) = match self {
            RefCond::Eq(a, _, n) | RefCond::In(a, _, n) | RefCond::Exists(a, n) => (*a, *n),
            RefCond::Gt(a, _) | RefCond::SemverGte(a, _) => (*a, false),
        };
        let hit = ctx.get(attr).is_some_and(|v| match self {
            RefCond::Eq(_, text, _) => equals(v, text),
            RefCond::In(_, list, _) => list.iter().any(|t| equals(v, t)),
            RefCond::Gt(_, rhs) => {
                let lhs = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                lhs.and_then(|l| l.partial_cmp(rhs)) == Some(Ordering::Greater)
            }
            RefCond::SemverGte(_, rhs) => {
                let parse = |s: &str| semver::Version::parse(s.trim().trim_start_matches('v'));
                let rhs = parse(rhs).unwrap();
                match v {
                    Value::String(s) => {
                        parse(s).is_ok_and(|l| l.cmp_precedence(&rhs) != Ordering::Less)
                    }
                    _ => false,
                }
            }
            RefCond::Exists(..) => !v.is_null(),
        });
        hit != negate
    }
}

/// One generated experiment, as the reference evaluates it.
struct RefExp {
    key: String,
    status: &'static str,
    winner: Option<usize>,
    variants: Vec<(String, f64)>,
    traffic: f64,
    hash_key: &'static str,
    salt: String,
    conds: Vec<RefCond>,
    /// `(salt, hashKey, [start, end))` of its layer.
    layer: Option<(&'static str, &'static str, [f64; 2])>,
    /// `(salt, fraction)` of its holdout (drawn on the experiment's unit).
    holdout: Option<(&'static str, f64)>,
}

/// Conditions many experiments share (memoized per call by the engine).
fn shared_conds() -> Vec<RefCond> {
    vec![
        RefCond::Eq("region", "US".into(), false),
        RefCond::Eq("region", "EU".into(), false),
        RefCond::Eq("internal", "true".into(), true),
        RefCond::Eq("beta", "true".into(), false),
        RefCond::Eq("age", "41".into(), false),
        RefCond::In("plan", vec!["pro".into(), "team".into()], false),
        RefCond::In("country", vec!["FR".into(), "DE".into()], true),
        RefCond::Gt("age", 30.0),
        RefCond::SemverGte("appVersion", "2.0.0"),
        RefCond::Exists("email", false),
        RefCond::Exists("email", true),
    ]
}

fn generate(rng: &mut Rng) -> (Value, Vec<RefExp>) {
    let shared = shared_conds();
    let mut layer_next = [0usize; 2];
    let mut exps = Vec::new();
    for i in 0..EXPERIMENTS {
        let n = 1 + rng.below(5) as usize;
        let mut variants: Vec<(String, f64)> = (0..n)
            .map(|v| {
                let w = *rng.pick(&[1.0, 1.0, 2.0, 3.0, 0.5, 0.0, 1e-3, 7.25]);
                (format!("v{v}"), w)
            })
            .collect();
        if variants.iter().all(|(_, w)| *w == 0.0) {
            variants[0].1 = 1.0;
        }
        let status = match rng.below(20) {
            0 => "paused",
            1 => "stopped",
            _ => "running",
        };
        let winner = (status != "running" && rng.percent(50)).then(|| rng.below(n as u64) as usize);
        let hash_key = *rng.pick(&["userId", "userId", "targetingKey", "accountId"]);
        let salt = if rng.percent(30) {
            "shared-salt".to_string()
        } else {
            format!("exp-{i:04}")
        };
        let mut conds = Vec::new();
        if rng.percent(50) {
            for _ in 0..1 + rng.below(3) {
                conds.push(rng.pick(&shared).clone());
            }
            if rng.percent(30) {
                conds.push(RefCond::Gt("age", rng.below(90) as f64 + 0.5));
            }
        }
        let layer = if rng.percent(10) {
            let l = rng.below(2) as usize;
            let k = layer_next[l];
            layer_next[l] += 1;
            // 1% slices: at most 100 experiments per layer, never overlapping.
            (k < 100).then(|| {
                let (name, attr) = [("L0", "userId"), ("L1", "targetingKey")][l];
                (name, attr, [k as f64 / 100.0, (k + 1) as f64 / 100.0])
            })
        } else {
            None
        };
        let holdout = rng.percent(5).then_some(("H", 0.2));
        exps.push(RefExp {
            key: format!("exp-{i:04}"),
            status,
            winner,
            variants,
            traffic: *rng.pick(&[0.0, 0.05, 0.25, 0.5, 0.75, 0.999, 1.0, 1.0]),
            hash_key,
            salt,
            conds,
            layer,
            holdout,
        });
    }
    let docs: Vec<Value> = exps
        .iter()
        .map(|e| {
            let mut v = json!({
                "key": e.key, "status": e.status, "trafficAllocation": e.traffic,
                "variants": e.variants.iter().map(|(k, w)| json!({"key": k, "weight": w})).collect::<Vec<_>>(),
                "assignment": {"hashKey": e.hash_key, "salt": e.salt},
            });
            if let Some(w) = e.winner {
                v["winner"] = json!(e.variants[w].0);
            }
            if !e.conds.is_empty() {
                let mut t = json!({"include": [], "exclude": [], "rules": []});
                for c in &e.conds {
                    let (field, value) = c.config();
                    t[field].as_array_mut().unwrap().push(value);
                }
                v["targeting"] = t;
            }
            if let Some((name, _, range)) = e.layer {
                v["layer"] = json!({"key": name, "range": range});
            }
            if let Some((name, _)) = e.holdout {
                v["holdout"] = json!(name);
            }
            v
        })
        .collect();
    let doc = json!({
        "experiments": docs,
        "layers": [{"key": "L0", "hashKey": "userId"}, {"key": "L1", "hashKey": "targetingKey"}],
        "holdouts": [{"key": "H", "fraction": 0.2}],
    });
    (doc, exps)
}

/// Unit ids of every shape: short, exactly 8 / 32 bytes, long, numeric, empty.
fn unit_value(rng: &mut Rng, i: usize) -> Option<Value> {
    Some(match rng.below(12) {
        0 => return None,
        1 => json!(""),
        2 => json!(i as u64 * 7919),
        3 => json!(i as f64 + 0.5),
        4 => json!(format!("{:08}", i % 100_000_000)),
        5 => json!(format!("{:032}", i)),
        6 => json!(format!("long-user-id-{i:040}")),
        7 => json!(true),
        8 => json!("é-ü-ß"),
        _ => json!(format!("user-{i}")),
    })
}

fn context(rng: &mut Rng, i: usize) -> Map<String, Value> {
    let mut m = Map::new();
    for attr in ["userId", "targetingKey", "accountId"] {
        if let Some(v) = unit_value(rng, i * 3 + attr.len()) {
            m.insert(attr.into(), v);
        }
    }
    let mut put = |m: &mut Map<String, Value>, k: &str, choices: &[Value]| {
        let v = rng.pick(choices).clone();
        if !v.is_null() || k == "email" {
            m.insert(k.into(), v);
        }
    };
    put(
        &mut m,
        "region",
        &[json!("US"), json!("EU"), json!("US"), Value::Null],
    );
    put(
        &mut m,
        "internal",
        &[json!(false), json!(true), json!("true"), Value::Null],
    );
    put(
        &mut m,
        "beta",
        &[json!(true), json!("true"), json!(1), Value::Null],
    );
    put(
        &mut m,
        "age",
        &[
            json!(41),
            json!("41"),
            json!(" 29 "),
            json!(30.5),
            json!([1]),
            Value::Null,
        ],
    );
    put(
        &mut m,
        "plan",
        &[json!("pro"), json!("free"), json!("team"), Value::Null],
    );
    put(&mut m, "country", &[json!("FR"), json!("US"), Value::Null]);
    put(
        &mut m,
        "appVersion",
        &[
            json!("2.4.1"),
            json!("1.9.0"),
            json!("v3.0.0"),
            json!("2.0.0-rc.1"),
            json!("x"),
            json!(2),
        ],
    );
    put(
        &mut m,
        "email",
        &[json!("a@b.c"), Value::Null, json!({"x": 1})],
    );
    m
}

/// The unit bytes of an attribute value, as README specifies them.
fn unit_bytes(v: Option<&Value>) -> Option<Vec<u8>> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.as_bytes().to_vec()),
        Value::Number(n) => {
            let f = n.as_f64()?;
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                Some((f as i64).to_string().into_bytes())
            } else {
                Some(f.to_string().into_bytes())
            }
        }
        _ => None,
    }
}

/// `(variant, enrolled, reason)` by the documented algorithm, step by step.
fn reference(e: &RefExp, ctx: &Map<String, Value>) -> (String, bool, Reason) {
    let default = || e.variants[0].0.clone();
    if e.status != "running" {
        return match e.winner {
            Some(w) => (e.variants[w].0.clone(), false, Reason::Winner),
            None => (default(), false, Reason::Disabled),
        };
    }
    let Some(unit) = unit_bytes(ctx.get(e.hash_key)) else {
        let live: Vec<_> = e.variants.iter().filter(|(_, w)| *w > 0.0).collect();
        let plain = e.traffic >= 1.0
            && e.conds.is_empty()
            && e.layer.is_none()
            && e.holdout.is_none()
            && live.len() == 1;
        let v = if plain { live[0].0.clone() } else { default() };
        return (v, false, Reason::MissingUnit);
    };
    if !e.conds.iter().all(|c| c.holds(ctx)) {
        return (default(), false, Reason::TargetingMiss);
    }
    if let Some((salt, fraction)) = e.holdout {
        let s = slot(DrawKey::derive(purpose::HOLDOUT, salt, "").draw(&unit)) as u64;
        if s < threshold(fraction) {
            return (default(), false, Reason::Holdout);
        }
    }
    if let Some((salt, attr, [start, end])) = e.layer {
        let Some(u) = unit_bytes(ctx.get(attr)) else {
            return (default(), false, Reason::MissingUnit);
        };
        let s = slot(DrawKey::derive(purpose::LAYER, salt, "").draw(&u)) as u64;
        if !(threshold(start) <= s && s < threshold(end)) {
            return (default(), false, Reason::NotInLayer);
        }
    }
    let s = slot(DrawKey::derive(purpose::TRAFFIC, &e.salt, "").draw(&unit)) as u64;
    if s >= threshold(e.traffic) {
        return (default(), false, Reason::NotInTraffic);
    }
    let mut best: Option<(&str, f64)> = None;
    for (k, w) in &e.variants {
        if *w <= 0.0 {
            continue;
        }
        let score = rendezvous_score(
            DrawKey::derive(purpose::VARIANT, &e.salt, k).draw(&unit),
            *w,
        );
        if best.is_none_or(|(bk, bs)| score < bs || (score == bs && k.as_str() < bk)) {
            best = Some((k, score));
        }
    }
    (best.unwrap().0.to_string(), true, Reason::Split)
}

#[test]
fn optimized_paths_equal_the_reference_on_a_generated_population() {
    let contexts: usize = std::env::var("COHORTD_REFERENCE_CONTEXTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let mut rng = Rng::new(0x5eed_2026_1206);
    let (doc, exps) = generate(&mut rng);
    let snap: Snapshot = compile_value(&doc);
    assert_eq!(snap.served().count(), EXPERIMENTS);
    let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
    for i in 0..contexts {
        let ctx = context(&mut rng, i);
        let expected: Vec<_> = exps.iter().map(|e| reference(e, &ctx)).collect();
        // `evaluate` reads each experiment's attributes in one walk of the
        // context, implemented per form: the JSON map, the `Struct`, and the
        // context the server decodes from the request's bytes.
        let proto = json_object_to_struct(&ctx);
        let bytes = [proto.encode_to_vec()];
        let wire = WireContext::decode(&bytes, &Limits::default()).expect("valid context");
        let forms: [(&str, &dyn Context); 3] =
            [("json", &ctx), ("struct", &proto), ("wire", &wire)];
        for (e, want) in exps.iter().zip(&expected) {
            *reasons.entry(want.2.as_str()).or_default() += 1;
            let exp = snap.experiment(&e.key).unwrap();
            for (form, c) in forms {
                let a = exp.evaluate(c, EvalOptions::default(), &mut ());
                let got = (a.variant.key.to_string(), a.enrolled, a.reason);
                assert_eq!(&got, want, "evaluate ({form}) {} for {ctx:?}", e.key);
            }
        }
        for form in ["json", "struct"] {
            let mut got = Vec::with_capacity(EXPERIMENTS);
            let mut push = |a: cohortd::engine::Assignment<'_>| {
                got.push((a.variant.key.to_string(), a.enrolled, a.reason))
            };
            match form {
                "json" => snap.assign_all(&ctx, &mut push),
                _ => snap.assign_all(&proto, &mut push),
            }
            for ((e, want), got) in exps.iter().zip(&expected).zip(&got) {
                assert_eq!(got, want, "assign_all ({form}) {} for {ctx:?}", e.key);
            }
        }
    }
    // The population exercises every outcome, each many times.
    for r in Reason::ALL {
        if r == Reason::Sticky {
            continue;
        }
        let n = reasons.get(r.as_str()).copied().unwrap_or(0);
        assert!(n >= contexts, "reason {} seen only {n} times", r.as_str());
    }
}
