//! Engine benchmarks: one assignment of the template experiment (three variants,
//! targeting rules) from a JSON map (the CLI path) and from a protobuf `Struct`
//! (the gRPC path), and assigning all of 1,000 experiments for one context.
//!
//! Run: `cargo bench --bench engine`. Numbers are quoted in docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;

use cohortd::config::{parse_file, SourceFile};
use cohortd::engine::EvalOptions;
use cohortd::transport::convert::json_object_to_struct;
use cohortd::Snapshot;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};

const TEMPLATE: &str = include_str!("../examples/configs/checkout.json");
const KEY: &str = "exp-checkout-flow-v3";

fn snapshot(name: &str, text: &str) -> Snapshot {
    let doc = parse_file(Path::new(name), text.as_bytes()).expect("valid bench config");
    Snapshot::compile(&[SourceFile {
        path: name.into(),
        doc,
    }])
    .expect("valid bench config")
}

/// A realistic request context: the unit id plus targeting attributes.
fn context(user: &str) -> Map<String, Value> {
    json!({
        "userId": user, "targetingKey": user, "region": "US", "accountType": "free",
        "internal": false, "bot": false, "appVersion": "2.4.1", "email": "someone@example.com",
        "country": "US", "plan": "pro"
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The first user (from `user-0`) that the template enrols (reason split), so the
/// "enrolled" case pays for every step: targeting, traffic and three scores.
fn enrolled_user(snap: &Snapshot) -> String {
    (0..)
        .map(|i| format!("user-{i}"))
        .find(|u| {
            snap.assign(KEY, &context(u), EvalOptions::default())
                .unwrap()
                .enrolled
        })
        .unwrap()
}

fn one_assignment(c: &mut Criterion) {
    let snap = snapshot("checkout.json", TEMPLATE);
    let user = enrolled_user(&snap);
    let json_ctx = context(&user);
    let proto_ctx = json_object_to_struct(&json_ctx);
    // 1,024 different users: 25% enrolled, as in production traffic.
    let mixed_json: Vec<_> = (0..1024).map(|i| context(&format!("user-{i}"))).collect();
    let mixed_proto: Vec<_> = mixed_json.iter().map(json_object_to_struct).collect();

    let mut g = c.benchmark_group("one_assignment");
    g.bench_function("json_map/enrolled", |b| {
        b.iter(|| {
            snap.assign(black_box(KEY), black_box(&json_ctx), EvalOptions::default())
                .unwrap()
                .variant
                .key
                .len()
        })
    });
    g.bench_function("proto_struct/enrolled", |b| {
        b.iter(|| {
            snap.assign(
                black_box(KEY),
                black_box(&proto_ctx),
                EvalOptions::default(),
            )
            .unwrap()
            .variant
            .key
            .len()
        })
    });
    let mut i = 0usize;
    g.bench_function("json_map/mixed_users", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            snap.assign(black_box(KEY), &mixed_json[i], EvalOptions::default())
                .unwrap()
                .enrolled
        })
    });
    let mut i = 0usize;
    g.bench_function("proto_struct/mixed_users", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            snap.assign(black_box(KEY), &mixed_proto[i], EvalOptions::default())
                .unwrap()
                .enrolled
        })
    });
    g.finish();
}

/// 1,000 running experiments shaped like real ones: 2 to 4 variants (some
/// weighted), traffic from 10% to 100%, a third with targeting rules, half keyed
/// by `userId` and half by `targetingKey`, a tenth in a layer.
fn thousand_experiments() -> String {
    let exps: Vec<Value> = (0..1000)
        .map(|i| {
            let n = 2 + i % 3;
            let variants: Vec<Value> = (0..n)
                .map(|v| json!({"key": format!("v{v}"), "weight": 1 + (i + v) % 3}))
                .collect();
            let mut e = json!({
                "key": format!("exp-{i:04}"), "status": "running",
                "trafficAllocation": 0.1 + 0.9 * ((i % 10) as f64 / 9.0),
                "variants": variants,
                "assignment": {"hashKey": if i % 2 == 0 { "userId" } else { "targetingKey" }},
            });
            if i % 3 == 0 {
                e["targeting"] = json!({
                    "include": ["region:US"], "exclude": ["internal:true"],
                    "rules": [{"attribute": "appVersion", "op": "semver_gte", "value": "2.0.0"}]
                });
            }
            if i % 10 == 0 {
                let slot = (i / 10) as f64 / 100.0;
                e["layer"] = json!({"key": "L", "range": [slot, slot + 0.01]});
                e["assignment"]["hashKey"] = json!("userId");
            }
            e
        })
        .collect();
    json!({ "experiments": exps }).to_string()
}

fn all_experiments(c: &mut Criterion) {
    let snap = snapshot("thousand.json", &thousand_experiments());
    assert_eq!(snap.served().count(), 1000);
    let json_ctx = context("user-12345");
    let proto_ctx = json_object_to_struct(&json_ctx);
    let mut g = c.benchmark_group("assign_all_1000");
    g.bench_function("json_map", |b| {
        b.iter(|| {
            let mut enrolled = 0u32;
            snap.assign_all(black_box(&json_ctx), |a| enrolled += a.enrolled as u32);
            enrolled
        })
    });
    g.bench_function("proto_struct", |b| {
        b.iter(|| {
            let mut enrolled = 0u32;
            snap.assign_all(black_box(&proto_ctx), |a| enrolled += a.enrolled as u32);
            enrolled
        })
    });
    g.bench_function("proto_struct/evaluate_each", |b| {
        b.iter(|| {
            snap.served()
                .map(|e| {
                    e.evaluate(black_box(&proto_ctx), EvalOptions::default(), &mut ())
                        .enrolled as u32
                })
                .sum::<u32>()
        })
    });
    g.finish();
}

criterion_group!(benches, one_assignment, all_experiments);
criterion_main!(benches);
