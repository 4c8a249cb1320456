//! Engine benchmarks: one assignment of the template experiment (three variants,
//! targeting rules) from a JSON map (the CLI path), from a protobuf `Struct`,
//! and from the context the gRPC server really evaluates (a `WireContext` read
//! from the request's `Struct` bytes; its `decode_and_assign` row includes that
//! read), and assigning all of 1,000 experiments for one context.
//!
//! Run: `cargo bench --bench engine`. Numbers are quoted in docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;

use cohortd::config::{parse_file, SourceFile};
use cohortd::engine::EvalOptions;
use cohortd::transport::convert::json_object_to_struct;
use cohortd::transport::limits::Limits;
use cohortd::transport::wire::context::WireContext;
use cohortd::Snapshot;
use criterion::{criterion_group, Criterion};
use prost::Message;
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

/// The context as a gRPC request carries it: a `Struct`'s bytes (prost writes
/// the names in key order, as every client whose `Struct` is a sorted map).
fn wire_bytes(ctx: &Map<String, Value>) -> Vec<u8> {
    json_object_to_struct(ctx).encode_to_vec()
}

/// The context the server evaluates, read from `bytes` as the server reads it
/// (the bytes are leaked so the view can outlive this function).
fn wire_context(bytes: Vec<u8>) -> WireContext<'static> {
    let chunks: &'static [Vec<u8>] = Box::leak(vec![bytes].into_boxed_slice());
    WireContext::decode(chunks, &Limits::default()).expect("valid context")
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

/// Every benchmark as a named closure returning something `black_box` keeps: the
/// criterion run and the instruction-count mode (`ENGINE_COUNT`, below) run the
/// very same code.
type Bench = (&'static str, Box<dyn FnMut() -> usize>);

fn one_assignment_benches() -> Vec<Bench> {
    let snap = std::sync::Arc::new(snapshot("checkout.json", TEMPLATE));
    let user = enrolled_user(&snap);
    let json_ctx = context(&user);
    let proto_ctx = json_object_to_struct(&json_ctx);
    // 1,024 different users: 25% enrolled, as in production traffic.
    let mixed_json: Vec<_> = (0..1024).map(|i| context(&format!("user-{i}"))).collect();
    let mixed_proto: Vec<_> = mixed_json.iter().map(json_object_to_struct).collect();
    let wire_ctx = wire_context(wire_bytes(&json_ctx));
    let request = [wire_bytes(&json_ctx)];
    let limits = Limits::default();
    let mixed_wire: Vec<_> = mixed_json
        .iter()
        .map(|c| wire_context(wire_bytes(c)))
        .collect();
    let (s1, s2, s3, s4) = (snap.clone(), snap.clone(), snap.clone(), snap.clone());
    let (s5, s6, s7) = (snap.clone(), snap.clone(), snap);
    let (mut i, mut j, mut k) = (0usize, 0usize, 0usize);
    vec![
        (
            "one_assignment/json_map/enrolled",
            Box::new(move || {
                s1.assign(black_box(KEY), black_box(&json_ctx), EvalOptions::default())
                    .unwrap()
                    .variant
                    .key
                    .len()
            }),
        ),
        (
            "one_assignment/proto_struct/enrolled",
            Box::new(move || {
                s2.assign(
                    black_box(KEY),
                    black_box(&proto_ctx),
                    EvalOptions::default(),
                )
                .unwrap()
                .variant
                .key
                .len()
            }),
        ),
        (
            "one_assignment/wire_context/enrolled",
            Box::new(move || {
                s5.assign(black_box(KEY), black_box(&wire_ctx), EvalOptions::default())
                    .unwrap()
                    .variant
                    .key
                    .len()
            }),
        ),
        (
            "one_assignment/wire_context/decode_and_assign",
            Box::new(move || {
                let ctx = WireContext::decode(black_box(&request[..]), &limits).unwrap();
                s6.assign(black_box(KEY), &ctx, EvalOptions::default())
                    .unwrap()
                    .variant
                    .key
                    .len()
            }),
        ),
        (
            "one_assignment/json_map/mixed_users",
            Box::new(move || {
                i = (i + 1) & 1023;
                s3.assign(black_box(KEY), &mixed_json[i], EvalOptions::default())
                    .unwrap()
                    .enrolled as usize
            }),
        ),
        (
            "one_assignment/proto_struct/mixed_users",
            Box::new(move || {
                j = (j + 1) & 1023;
                s4.assign(black_box(KEY), &mixed_proto[j], EvalOptions::default())
                    .unwrap()
                    .enrolled as usize
            }),
        ),
        (
            "one_assignment/wire_context/mixed_users",
            Box::new(move || {
                k = (k + 1) & 1023;
                s7.assign(black_box(KEY), &mixed_wire[k], EvalOptions::default())
                    .unwrap()
                    .enrolled as usize
            }),
        ),
    ]
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

fn all_experiments_benches() -> Vec<Bench> {
    let snap = std::sync::Arc::new(snapshot("thousand.json", &thousand_experiments()));
    assert_eq!(snap.served().count(), 1000);
    let json_ctx = context("user-12345");
    let proto_ctx = std::sync::Arc::new(json_object_to_struct(&json_ctx));
    let (s1, s2, s3) = (snap.clone(), snap.clone(), snap);
    let p2 = proto_ctx.clone();
    vec![
        (
            "assign_all_1000/json_map",
            Box::new(move || {
                let mut enrolled = 0usize;
                s1.assign_all(black_box(&json_ctx), |a| enrolled += a.enrolled as usize);
                enrolled
            }),
        ),
        (
            "assign_all_1000/proto_struct",
            Box::new(move || {
                let mut enrolled = 0usize;
                s2.assign_all(black_box(&*proto_ctx), |a| enrolled += a.enrolled as usize);
                enrolled
            }),
        ),
        (
            "assign_all_1000/proto_struct/evaluate_each",
            Box::new(move || {
                s3.served()
                    .map(|e| {
                        e.evaluate(black_box(&*p2), EvalOptions::default(), &mut ())
                            .enrolled as usize
                    })
                    .sum::<usize>()
            }),
        ),
    ]
}

fn all_benches() -> Vec<Bench> {
    let mut v = one_assignment_benches();
    v.extend(all_experiments_benches());
    v
}

fn criterion_benches(c: &mut Criterion) {
    for (name, mut f) in all_benches() {
        c.bench_function(name, |b| b.iter(&mut f));
    }
}

/// Instruction-count mode for callgrind (benches/engine_callgrind.sh):
/// `ENGINE_COUNT=NAME:ITERATIONS` runs one benchmark that many times and exits.
/// Two runs with N and 2N iterations differ by exactly N iterations' instructions,
/// which cancels the setup (config compile, contexts) out of the count.
fn count_mode(spec: &str) {
    let (name, n) = spec.rsplit_once(':').expect("ENGINE_COUNT=NAME:ITERATIONS");
    let n: usize = n.parse().expect("ITERATIONS is a number");
    let (_, mut f) = all_benches()
        .into_iter()
        .find(|(b, _)| *b == name)
        .unwrap_or_else(|| panic!("no benchmark named {name}"));
    let mut sink = 0usize;
    for _ in 0..n {
        sink = sink.wrapping_add(f());
    }
    black_box(sink);
}

criterion_group!(benches, criterion_benches);

fn main() {
    if let Ok(spec) = std::env::var("ENGINE_COUNT") {
        if spec == "list" {
            all_benches().iter().for_each(|(n, _)| println!("{n}"));
        } else {
            count_mode(&spec);
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
