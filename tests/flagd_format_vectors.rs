//! Reference vectors for the flagd flag language: murmur3 (x86_32), canonical CBOR
//! (RFC 8949 Appendix A), flagd's own `fractional` expectations, the custom
//! operators' documented examples, and the JsonLogic reference tests
//! (tests/vectors/jsonlogic/tests.json, vendored from json-logic-js, MIT).

mod support;

use std::path::Path;

use cohortd::config::flagd::parse_flagd_value;
use cohortd::engine::flagd::cbor;
use cohortd::engine::flagd::fractional::murmur3_32;
use cohortd::engine::flagd::jsonlogic::{self, Env, State};
use cohortd::engine::flagd::{FlagdReason, FractionalForm};
use cohortd::snapshot::flagd::{compile_document, FlagdFlag, Logic};
use serde_json::{json, Map, Value};
use support::context::json_ctx;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn murmur3_x86_32_matches_reference_vectors() {
    // Seeded vectors published with the reference implementation (SMHasher).
    let seeded =
        |s: &[u8], seed: u32| murmur3::murmur3_32(&mut std::io::Cursor::new(s), seed).unwrap();
    assert_eq!(seeded(b"", 1), 0x514e_28b7);
    assert_eq!(seeded(b"", 0xffff_ffff), 0x81f1_6f39);
    assert_eq!(seeded(b"\0\0\0\0", 0), 0x2362_f9de);
    assert_eq!(seeded(b"aaaa", 0x9747_b28c), 0x5a97_808a);
    assert_eq!(seeded(b"Hello, world!", 0x9747_b28c), 0x2488_4cba);
    assert_eq!(
        seeded(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
        0x2fa8_26cd
    );
    // Seed 0 as flagd uses it; values from Python mmh3 5.3.1 (`mmh3.hash(b, 0, signed=False)`).
    assert_eq!(murmur3_32(b""), 0);
    assert_eq!(murmur3_32(b"hello"), 613_153_351);
    assert_eq!(murmur3_32(b"headerColorrachel@faas.com"), 1_805_633_606);
    assert_eq!(
        murmur3_32(b"The quick brown fox jumps over the lazy dog"),
        776_992_547
    );
}

#[test]
fn cbor_matches_rfc8949_appendix_a() {
    let ints: &[(i128, &str)] = &[
        (0, "00"),
        (1, "01"),
        (10, "0a"),
        (23, "17"),
        (24, "1818"),
        (25, "1819"),
        (100, "1864"),
        (1000, "1903e8"),
        (1_000_000, "1a000f4240"),
        (1_000_000_000_000, "1b000000e8d4a51000"),
        (18_446_744_073_709_551_615, "1bffffffffffffffff"),
        (-18_446_744_073_709_551_616, "3bffffffffffffffff"),
        (-1, "20"),
        (-10, "29"),
        (-100, "3863"),
        (-1000, "3903e7"),
    ];
    for (n, want) in ints {
        let mut out = Vec::new();
        cbor::write_int(&mut out, *n);
        assert_eq!(hex(&out), *want, "int {n}");
    }
    let floats: &[(f64, &str)] = &[
        (0.0, "f90000"),
        (-0.0, "f98000"),
        (1.0, "f93c00"),
        (1.1, "fb3ff199999999999a"),
        (1.5, "f93e00"),
        (65504.0, "f97bff"),
        (100000.0, "fa47c35000"),
        (3.4028234663852886e38, "fa7f7fffff"),
        (1.0e300, "fb7e37e43c8800759c"),
        (5.960464477539063e-8, "f90001"),
        (0.00006103515625, "f90400"),
        (-4.0, "f9c400"),
        (-4.1, "fbc010666666666666"),
    ];
    for (f, want) in floats {
        let mut out = Vec::new();
        cbor::write_float(&mut out, *f);
        assert_eq!(hex(&out), *want, "float {f}");
    }
    let values = [
        (json!(false), "f4"),
        (json!(true), "f5"),
        (json!(null), "f6"),
        (json!(""), "60"),
        (json!("a"), "6161"),
        (json!("IETF"), "6449455446"),
        (json!("\u{00fc}"), "62c3bc"),
        (json!("\u{6c34}"), "63e6b0b4"),
        (json!([]), "80"),
        (json!([1, 2, 3]), "83010203"),
        (json!([1, [2, 3], [4, 5]]), "8301820203820405"),
        (json!({}), "a0"),
        (json!({"a": 1, "b": [2, 3]}), "a26161016162820203"),
        (json!(["a", {"b": "c"}]), "826161a161626163"),
    ];
    for (v, want) in values {
        assert_eq!(hex(&cbor::to_vec(&v)), want, "value {v}");
    }
}

#[test]
fn cbor_is_canonical_and_normalised_as_flagd_core_hashes_it() {
    // Python: cbor2.dumps(normalize_numbers(v), canonical=True).hex() (cbor2 5.9.0).
    assert_eq!(
        hex(&cbor::to_vec(&json!({"b": 1, "a": 2, "aa": 3}))),
        "a361610261620162616103"
    );
    assert_eq!(
        hex(&cbor::to_vec(&json!(["flag", "user-1"]))),
        "8264666c616766757365722d31"
    );
    assert_eq!(
        hex(&cbor::to_vec(&json!([
            1.5,
            100000.5,
            5.960464477539063e-8,
            1.1
        ]))),
        "84f93e00fa47c35040f90001fb3ff199999999999a"
    );
    // Integral floats are hashed as the integers they equal.
    assert_eq!(cbor::to_vec(&json!(100000.0)), cbor::to_vec(&json!(100000)));
    assert_eq!(
        cbor::to_vec(&json!([-2.0, {"k": 7.0}])),
        cbor::to_vec(&json!([-2, {"k": 7}]))
    );
}

fn colors(targeting: Value) -> FlagdFlag {
    keyed("headerColor", targeting)
}

fn keyed(key: &str, targeting: Value) -> FlagdFlag {
    let doc = json!({ "flags": { key: {
        "state": "ENABLED",
        "defaultVariant": "red",
        "variants": { "red": "#FF0000", "blue": "#0000FF", "green": "#00FF00", "yellow": "#FFFF00" },
        "targeting": targeting,
    } } });
    let parsed = parse_flagd_value(Path::new("t.json"), &doc).unwrap();
    compile_document(Path::new("t.json"), &parsed)
        .unwrap()
        .remove(0)
}

fn four(bucket_by: Value) -> Value {
    json!({ "if": [
        { "in": ["@faas.com", { "var": ["email"] }] },
        { "fractional": [bucket_by, ["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]] },
        null
    ]})
}

#[test]
fn fractional_v1_matches_flagd_go_evaluator_expectations() {
    // flagd core/pkg/evaluator/fractional_test.go of the weighted-percentage era
    // (the v1 form): flag key, bucketing expression, context, expected variant.
    let by_key = four(json!({ "cat": [{ "var": "$flagd.flagKey" }, { "var": "email" }] }));
    let by_seed = four(json!({ "cat": ["my-seed", { "var": "email" }] }));
    let cases = [
        ("headerColor", &by_key, "rachel@faas.com", "yellow"),
        ("headerColor", &by_key, "monica@faas.com", "blue"),
        ("headerColor", &by_key, "joey@faas.com", "red"),
        ("headerColor", &by_key, "ross@faas.com", "green"),
        (
            "customSeededHeaderColor",
            &by_seed,
            "rachel@faas.com",
            "green",
        ),
        (
            "customSeededHeaderColor",
            &by_seed,
            "monica@faas.com",
            "red",
        ),
        (
            "customSeededHeaderColor",
            &by_seed,
            "joey@faas.com",
            "green",
        ),
        (
            "customSeededHeaderColor",
            &by_seed,
            "ross@faas.com",
            "green",
        ),
    ];
    for (key, targeting, email, want) in cases {
        let f = keyed(key, targeting.clone());
        let o = f
            .evaluate(&json_ctx(json!({ "email": email })), 0, FractionalForm::V1)
            .unwrap();
        assert_eq!(
            (o.variant, o.reason, o.bucketed),
            (Some(want), FlagdReason::TargetingMatch, true),
            "{key} {email}"
        );
    }
    let footer = keyed("footerColor", four(json!({ "var": "email" })));
    let o = footer
        .evaluate(
            &json_ctx(json!({ "email": "ross@faas.com" })),
            0,
            FractionalForm::V1,
        )
        .unwrap();
    assert_eq!(o.variant, Some("red"));
    let uneven = keyed(
        "headerColor",
        json!({ "if": [
            { "in": ["@faas.com", { "var": ["email"] }] },
            { "fractional": ["email", ["red", 50], ["blue", 25], ["green", 25]] },
            null
        ]}),
    );
    let o = uneven
        .evaluate(
            &json_ctx(json!({ "email": "test4@faas.com" })),
            0,
            FractionalForm::V1,
        )
        .unwrap();
    assert_eq!(o.variant, Some("red"));
    let eval = |targeting: Value, c: Value| {
        let f = keyed("headerColor", targeting);
        let o = f.evaluate(&json_ctx(c), 0, FractionalForm::V1).unwrap();
        (o.variant.map(str::to_owned), o.reason)
    };
    let v = |s: &str| Some(s.to_owned());
    let tm = FlagdReason::TargetingMatch;
    let all4 = json!({ "fractional": [{ "var": "email" }, ["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]] });
    assert_eq!(eval(all4, json!({})), (v("red"), FlagdReason::Default));
    let two = json!({ "fractional": [{ "var": "email" }, ["red", 25], ["blue", 25]] });
    assert_eq!(eval(two, json!({ "email": "foo@foo.com" })), (v("red"), tm));
    let unweighted = json!({ "fractional": [{ "var": "email" }, ["red"], ["blue"]] });
    assert_eq!(
        eval(unweighted, json!({ "email": "foo@foo.com" })),
        (v("red"), tm)
    );
    let shorthand = json!({ "fractional": [["blue", 50], ["green", 50]] });
    assert_eq!(
        eval(shorthand, json!({ "targetingKey": "foo@foo.com" })),
        (v("blue"), tm)
    );
    let nil_first = json!({ "fractional": [{ "var": "email" }, ["red", 50], ["blue", 50]] });
    assert_eq!(
        eval(nil_first, json!({ "targetingKey": "foo@foo.com" })),
        (v("red"), tm)
    );
}

#[test]
fn fractional_forms_differ_only_where_documented() {
    // v3 hashes the CBOR of the value; v2 the raw string: different buckets in general.
    let f = colors(
        json!({ "fractional": [{ "var": "email" }, ["red", 1], ["blue", 1], ["green", 1], ["yellow", 1]] }),
    );
    let mut differ = 0;
    for i in 0..200 {
        let c = json_ctx(json!({ "email": format!("u{i}@x.io") }));
        let v2 = f.evaluate(&c, 0, FractionalForm::V2).unwrap().variant;
        let v3 = f.evaluate(&c, 0, FractionalForm::V3).unwrap().variant;
        differ += usize::from(v2 != v3);
    }
    assert!(differ > 100, "v2 and v3 agree on {} of 200", 200 - differ);
    // v3 needs a non-empty targeting key for the shorthand; v2 accepts "".
    let s = colors(json!({ "fractional": [["blue", 50], ["green", 50]] }));
    let empty = json_ctx(json!({ "targetingKey": "" }));
    assert_eq!(
        s.evaluate(&empty, 0, FractionalForm::V3).unwrap().reason,
        FlagdReason::Default
    );
    assert_eq!(
        s.evaluate(&empty, 0, FractionalForm::V2).unwrap().reason,
        FlagdReason::TargetingMatch
    );
    // v3 buckets by typed values (a number), v2 falls back to the targeting key.
    let n = colors(json!({ "fractional": [{ "var": "id" }, ["blue", 50], ["green", 50]] }));
    let c = json_ctx(json!({ "id": 42 }));
    assert!(n.evaluate(&c, 0, FractionalForm::V3).unwrap().bucketed);
    assert_eq!(
        n.evaluate(&c, 0, FractionalForm::V2).unwrap().reason,
        FlagdReason::Default
    );
}

fn run(logic: Value, data: Value) -> Value {
    let compiled = Logic::compile(&logic).unwrap_or_else(|e| panic!("{logic}: {e}"));
    let data = match data {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let key = json!("flag");
    let env = Env {
        ctx: &data,
        flag_key: &key,
        timestamp: json!(1_700_000_000),
        form: FractionalForm::V3,
    };
    jsonlogic::eval(&compiled, &env, &mut State::default()).into_owned()
}

#[test]
fn flagd_custom_operator_documented_examples() {
    // flagd docs, "Custom Operations" (sem_ver, starts_with, ends_with).
    let cases = [
        (json!({"sem_ver": ["1.1.2", "=", "1.1.2"]}), json!(true)),
        (json!({"sem_ver": ["1.1.2", "!=", "1.2.0"]}), json!(true)),
        (json!({"sem_ver": ["1.1.2", "<", "1.2.0"]}), json!(true)),
        (json!({"sem_ver": ["1.1.2", "<=", "1.1.2"]}), json!(true)),
        (json!({"sem_ver": ["1.2.0", ">", "1.1.2"]}), json!(true)),
        (json!({"sem_ver": ["1.1.2", ">=", "1.1.2"]}), json!(true)),
        (json!({"sem_ver": ["1.3.0", "^", "1.0.0"]}), json!(true)),
        (json!({"sem_ver": ["2.0.0", "^", "1.0.0"]}), json!(false)),
        (json!({"sem_ver": ["1.1.9", "~", "1.1.0"]}), json!(true)),
        (json!({"sem_ver": ["1.2.0", "~", "1.1.0"]}), json!(false)),
        (json!({"sem_ver": ["v1.2.3", "=", "1.2.3"]}), json!(true)),
        (json!({"sem_ver": ["1.2", "=", "1.2.0"]}), json!(true)),
        (json!({"sem_ver": ["1", "<", "1.0.1"]}), json!(true)),
        (
            json!({"sem_ver": ["1.2.3+build.5", "=", "1.2.3"]}),
            json!(true),
        ),
        (
            json!({"sem_ver": ["1.2.3-alpha", "<", "1.2.3"]}),
            json!(true),
        ),
        (
            json!({"sem_ver": ["not a version", "=", "1.2.3"]}),
            json!(null),
        ),
        (json!({"sem_ver": ["1.2.3", "=>", "1.2.3"]}), json!(null)),
        (
            json!({"starts_with": [{"var": "email"}, "user@faas"]}),
            json!(true),
        ),
        (
            json!({"ends_with": [{"var": "email"}, "faas.com"]}),
            json!(true),
        ),
        (
            json!({"starts_with": [{"var": "email"}, "faas"]}),
            json!(false),
        ),
        (json!({"ends_with": [{"var": "age"}, "1"]}), json!(null)),
        (json!({"var": "$flagd.flagKey"}), json!("flag")),
        (json!({"var": "$flagd.timestamp"}), json!(1_700_000_000)),
    ];
    let data = json!({"email": "user@faas.com", "age": 41});
    for (logic, want) in cases {
        assert_eq!(run(logic.clone(), data.clone()), want, "{logic}");
    }
}

#[test]
fn jsonlogic_reference_tests_pass() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/jsonlogic/tests.json"),
    )
    .unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for case in cases.iter().filter_map(Value::as_array) {
        let (logic, data, want) = (&case[0], &case[1], &case[2]);
        assert_eq!(&run(logic.clone(), data.clone()), want, "{logic} on {data}");
        n += 1;
    }
    assert_eq!(n, 72);
}

#[test]
fn jsonlogic_documented_operator_examples() {
    // https://jsonlogic.com/operations.html, one or more examples per operator.
    let cases = [
        (json!({"var": ["a"]}), json!({"a": 1, "b": 2}), json!(1)),
        (json!({"var": "a"}), json!({"a": 1}), json!(1)),
        (json!({"var": ["z", 26]}), json!({"a": 1}), json!(26)),
        (
            json!({"var": "champ.name"}),
            json!({"champ": {"name": "Fezzig", "height": 223}}),
            json!("Fezzig"),
        ),
        (json!({"var": 1}), json!({"1": "apple"}), json!("apple")),
        (
            json!({"var": "list.1"}),
            json!({"list": ["zero", "one"]}),
            json!("one"),
        ),
        (
            json!({"missing_some": [1, ["a", "b", "c"]]}),
            json!({"a": "apple"}),
            json!([]),
        ),
        (
            json!({"missing_some": [2, ["a", "b", "c"]]}),
            json!({"a": "apple"}),
            json!(["b", "c"]),
        ),
        (json!({"==": [1, 1]}), json!({}), json!(true)),
        (json!({"==": [1, "1"]}), json!({}), json!(true)),
        (json!({"==": [0, false]}), json!({}), json!(true)),
        (json!({"===": [1, "1"]}), json!({}), json!(false)),
        (json!({"!=": [1, 2]}), json!({}), json!(true)),
        (json!({"!=": [1, "1"]}), json!({}), json!(false)),
        (json!({"!==": [1, "1"]}), json!({}), json!(true)),
        (json!({"!": [true]}), json!({}), json!(false)),
        (json!({"!": true}), json!({}), json!(false)),
        (json!({"!!": [[]]}), json!({}), json!(false)),
        (json!({"!!": ["0"]}), json!({}), json!(true)),
        (json!({"or": [true, false]}), json!({}), json!(true)),
        (json!({"or": [false, "a"]}), json!({}), json!("a")),
        (json!({"or": [false, 0, "a"]}), json!({}), json!("a")),
        (json!({"and": [true, "", 3]}), json!({}), json!("")),
        (json!({"and": [true, "a", 3]}), json!({}), json!(3)),
        (json!({">": [2, 1]}), json!({}), json!(true)),
        (json!({">=": [1, 1]}), json!({}), json!(true)),
        (json!({"<": [1, 2]}), json!({}), json!(true)),
        (json!({"<=": [1, 1]}), json!({}), json!(true)),
        (json!({"<": [1, 2, 3]}), json!({}), json!(true)),
        (json!({"<": [1, 1, 3]}), json!({}), json!(false)),
        (json!({"<": [1, 4, 3]}), json!({}), json!(false)),
        (json!({"<=": [1, 1, 3]}), json!({}), json!(true)),
        (json!({"<=": [1, 4, 3]}), json!({}), json!(false)),
        (
            json!({"<": [0, {"var": "temp"}, 100]}),
            json!({"temp": 37}),
            json!(true),
        ),
        (json!({"max": [1, 2, 3]}), json!({}), json!(3)),
        (json!({"min": [1, 2, 3]}), json!({}), json!(1)),
        (json!({"+": [4, 2]}), json!({}), json!(6)),
        (json!({"-": [4, 2]}), json!({}), json!(2)),
        (json!({"*": [4, 2]}), json!({}), json!(8)),
        (json!({"/": [4, 2]}), json!({}), json!(2)),
        (json!({"+": [2, 2, 2, 2, 2]}), json!({}), json!(10)),
        (json!({"*": [2, 2, 2, 2, 2]}), json!({}), json!(32)),
        (json!({"-": 2}), json!({}), json!(-2)),
        (json!({"-": -2}), json!({}), json!(2)),
        (json!({"+": "2.5"}), json!({}), json!(2.5)),
        (json!({"%": [101, 2]}), json!({}), json!(1)),
        (
            json!({"map": [{"var": "integers"}, {"*": [{"var": ""}, 2]}]}),
            json!({"integers": [1, 2, 3, 4, 5]}),
            json!([2, 4, 6, 8, 10]),
        ),
        (
            json!({"filter": [{"var": "integers"}, {"%": [{"var": ""}, 2]}]}),
            json!({"integers": [1, 2, 3, 4, 5]}),
            json!([1, 3, 5]),
        ),
        (
            json!({"reduce": [{"var": "integers"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}),
            json!({"integers": [1, 2, 3, 4, 5]}),
            json!(15),
        ),
        (
            json!({"all": [[1, 2, 3], {">": [{"var": ""}, 0]}]}),
            json!({}),
            json!(true),
        ),
        (
            json!({"some": [[-1, 0, 1], {">": [{"var": ""}, 0]}]}),
            json!({}),
            json!(true),
        ),
        (
            json!({"none": [[-3, -2, -1], {">": [{"var": ""}, 0]}]}),
            json!({}),
            json!(true),
        ),
        (
            json!({"some": [{"var": "pies"}, {"==": [{"var": "filling"}, "apple"]}]}),
            json!({"pies": [{"filling": "pumpkin", "temp": 110}, {"filling": "rhubarb", "temp": 210}, {"filling": "apple", "temp": 310}]}),
            json!(true),
        ),
        (
            json!({"merge": [[1, 2], [3, 4]]}),
            json!({}),
            json!([1, 2, 3, 4]),
        ),
        (
            json!({"merge": [1, 2, [3, 4]]}),
            json!({}),
            json!([1, 2, 3, 4]),
        ),
        (
            json!({"in": ["Ringo", ["John", "Paul", "George", "Ringo"]]}),
            json!({}),
            json!(true),
        ),
        (
            json!({"in": ["Spring", "Springfield"]}),
            json!({}),
            json!(true),
        ),
        (
            json!({"cat": ["I love", " pie"]}),
            json!({}),
            json!("I love pie"),
        ),
        (
            json!({"cat": ["I love ", {"var": "filling"}, " pie"]}),
            json!({"filling": "apple"}),
            json!("I love apple pie"),
        ),
        (
            json!({"substr": ["jsonlogic", 4]}),
            json!({}),
            json!("logic"),
        ),
        (
            json!({"substr": ["jsonlogic", -5]}),
            json!({}),
            json!("logic"),
        ),
        (
            json!({"substr": ["jsonlogic", 1, 3]}),
            json!({}),
            json!("son"),
        ),
        (
            json!({"substr": ["jsonlogic", 4, -2]}),
            json!({}),
            json!("log"),
        ),
        (
            json!({"if": [{"<": [{"var": "temp"}, 0]}, "freezing", {"<": [{"var": "temp"}, 100]}, "liquid", "gas"]}),
            json!({"temp": 200}),
            json!("gas"),
        ),
        (json!({"?:": [true, 1, 2]}), json!({}), json!(1)),
    ];
    for (logic, data, want) in cases {
        assert_eq!(run(logic.clone(), data.clone()), want, "{logic} on {data}");
    }
}
