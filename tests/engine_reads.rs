//! The one-walk read of an experiment's attributes (`engine::reads`): every
//! context form (JSON map, protobuf `Struct`, the server's `WireContext`), small
//! (scanned) and large (looked up by name), gives exactly what one `get` per
//! name gives; and an experiment that reads more attributes than are gathered
//! evaluates the same through every form and through `assign_all`, whose memo
//! looks each attribute up on its own.

mod support;

use cohortd::engine::reads::{Reads, READS_MAX};
use cohortd::engine::{Attr, Context, EvalOptions, Reason};
use cohortd::transport::convert::json_object_to_struct;
use cohortd::transport::limits::Limits;
use cohortd::transport::wire::context::WireContext;
use prost::Message;
use serde_json::{json, Map, Value};
use support::compile::compile_value;
use support::rng::Rng;

/// Names that collide in length (`userId`, `region`, `regioN`), in length
/// modulo 64, in first byte, or differ only in their last byte, plus empty and
/// non-ASCII ones.
const NAMES: &[&str] = &[
    "userId",
    "region",
    "regioN",
    "bot",
    "abc",
    "accountType",
    "accountTypo",
    "targetingKey",
    "a",
    "",
    "x-y",
    "région",
    "appVersion-and-then-some",
    // Lengths 64 and 70: the same length modulo 64 as `""` and `userId`
    // (names are passed over by their length modulo 64 first).
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "userId0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => json!(*rng.pick(&["US", "", "42", "true"])),
        1 => json!(rng.below(100)),
        2 => json!(rng.normal()),
        3 => json!(rng.percent(50)),
        4 => Value::Null,
        _ => json!([1, "x"]),
    }
}

/// A context of `n` attributes drawn from [`NAMES`] and `k0`, `k1`, ...
fn random_context(rng: &mut Rng, n: usize) -> Map<String, Value> {
    let mut m = Map::new();
    while m.len() < n {
        let name = match rng.below(3) {
            0 => format!("k{}", rng.below(40)),
            _ => rng.pick(NAMES).to_string(),
        };
        let v = random_value(rng);
        m.insert(name, v);
    }
    m
}

fn random_reads(rng: &mut Rng) -> Reads {
    let unit = NAMES[rng.below(NAMES.len() as u64) as usize];
    let mut r = Reads::new(unit);
    for _ in 0..rng.below(READS_MAX as u64 + 3) {
        let name = match rng.below(4) {
            0 => format!("k{}", rng.below(40)),
            _ => rng.pick(NAMES).to_string(),
        };
        r.add(&name);
    }
    r
}

/// `get_reads` against one `get` per name.
fn agrees<C: Context + ?Sized>(ctx: &C, reads: &Reads, form: &str) {
    let mut got = [None; READS_MAX];
    let got = &mut got[..reads.len()];
    ctx.get_reads(reads, got);
    for (i, name) in reads.names().iter().enumerate() {
        assert_eq!(got[i], ctx.get(name), "{form}: attribute {name:?}");
    }
}

#[test]
fn one_walk_reads_what_one_get_per_name_reads_in_every_form() {
    let mut rng = Rng::new(0x2ead5);
    let limits = Limits::default();
    let mut sizes = std::collections::BTreeSet::new();
    for case in 0..3000 {
        // Sizes on both sides of the scan limit (16 attributes).
        let n = (case % 26) as usize;
        let json = random_context(&mut rng, n);
        sizes.insert(json.len());
        let proto = json_object_to_struct(&json);
        let bytes = [proto.encode_to_vec()];
        let wire = WireContext::decode(&bytes, &limits).expect("valid context");
        for _ in 0..4 {
            let reads = random_reads(&mut rng);
            agrees(&json, &reads, "json");
            agrees(&proto, &reads, "struct");
            agrees(&wire, &reads, "wire");
            agrees(&&wire, &reads, "&wire");
        }
    }
    assert!(sizes.contains(&0) && sizes.contains(&25), "{sizes:?}");
}

#[test]
fn an_experiment_reading_more_attributes_than_are_gathered_evaluates_alike() {
    // Twelve targeting attributes besides the unit: more than READS_MAX.
    let attrs: Vec<String> = (0..12).map(|i| format!("attr{i}")).collect();
    assert!(attrs.len() + 1 > READS_MAX);
    let include: Vec<Value> = attrs.iter().map(|a| json!(format!("{a}:yes"))).collect();
    let snap = compile_value(&json!({
        "key": "wide", "status": "running", "trafficAllocation": 1.0,
        "variants": ["a", "b", "c"],
        "assignment": {"hashKey": "userId", "salt": "wide"},
        "targeting": {"include": include},
    }));
    let e = snap.experiment("wide").unwrap();
    let limits = Limits::default();
    let mut rng = Rng::new(7);
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for i in 0..2000 {
        let mut ctx = Map::new();
        ctx.insert("userId".into(), json!(format!("user-{i}")));
        // Mostly every condition holds; sometimes one (any, early or late) fails.
        let miss = rng
            .percent(40)
            .then(|| rng.below(attrs.len() as u64) as usize);
        for (j, a) in attrs.iter().enumerate() {
            ctx.insert(a.clone(), json!(if miss == Some(j) { "no" } else { "yes" }));
        }
        let proto = json_object_to_struct(&ctx);
        let bytes = [proto.encode_to_vec()];
        let wire = WireContext::decode(&bytes, &limits).unwrap();
        let mut all = Vec::new();
        snap.assign_all(&ctx, |a| all.push((a.variant.key.to_string(), a.reason)));
        let want = &all[0];
        assert_eq!(want.1 == Reason::TargetingMiss, miss.is_some(), "{ctx:?}");
        let forms: [(&str, &dyn Context); 3] =
            [("json", &ctx), ("struct", &proto), ("wire", &wire)];
        for (form, c) in forms {
            let a = e.evaluate(c, EvalOptions::default(), &mut ());
            assert_eq!(
                &(a.variant.key.to_string(), a.reason),
                want,
                "{form} {ctx:?}"
            );
        }
        *seen.entry(want.1.as_str()).or_default() += 1;
    }
    assert!(
        seen["split"] > 500 && seen["targeting_miss"] > 500,
        "{seen:?}"
    );
}

#[test]
fn attribute_values_are_the_contexts_own() {
    let ctx = json!({"userId": 42, "region": "US", "bot": false, "plan": null});
    let ctx = ctx.as_object().unwrap();
    let mut r = Reads::new("userId");
    for name in ["region", "bot", "plan", "absent"] {
        r.add(name);
    }
    let mut out = [None; 5];
    ctx.get_reads(&r, &mut out);
    assert_eq!(
        out,
        [
            Some(Attr::Num(42.0)),
            Some(Attr::Str("US")),
            Some(Attr::Bool(false)),
            Some(Attr::Null),
            None
        ]
    );
}
