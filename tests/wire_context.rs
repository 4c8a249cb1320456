//! The flat wire decoder of cohortd.v1 contexts (`transport::wire::context`)
//! against prost's decoded `google.protobuf.Struct`: the same attributes, the
//! same JSON, the same limits, and a clear INVALID_ARGUMENT for bytes that are
//! not a Struct.

mod support;

#[path = "../fuzz/bodies/wire_context.rs"]
mod fuzz_body;

use std::borrow::Cow;

use cohortd::engine::reads::Reads;
use cohortd::engine::{Attr, Context};
use cohortd::transport::convert::struct_to_json;
use cohortd::transport::limits::Limits;
use cohortd::transport::pb;
use cohortd::transport::wire::context::{ContextError, WireContext};
use cohortd::transport::wire::request::AssignRequest;
use prost::bytes::Bytes;
use prost::Message;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use support::context::sv;
use support::rng::Rng;

fn v(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

fn num(n: f64) -> Value {
    v(Kind::NumberValue(n))
}

fn list(values: Vec<Value>) -> Value {
    v(Kind::ListValue(ListValue { values }))
}

fn obj(fields: Vec<(&str, Value)>) -> Value {
    v(Kind::StructValue(strukt(fields)))
}

fn strukt(fields: Vec<(&str, Value)>) -> Struct {
    Struct {
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

fn decode<'a>(chunks: &'a [Bytes], limits: &Limits) -> Result<WireContext<'a>, ContextError> {
    WireContext::decode(chunks, limits)
}

/// Decodes `s`'s encoding both ways and checks they agree: every attribute,
/// the JSON (built on demand, and built by the decoding walk), and the limits'
/// verdict (with the same message when `exact`; a context over several limits
/// at once may name another of them first).
fn agrees(s: &Struct, limits: &Limits, exact: bool) {
    let chunks = [Bytes::from(s.encode_to_vec())];
    let verdict = (limits.check_context(s), decode(&chunks, limits));
    let with_json = WireContext::decode_with_json(&chunks, limits);
    match verdict {
        (Ok(()), Ok(flat)) => {
            assert_eq!(flat.len(), s.fields.len());
            for name in s.fields.keys() {
                assert_eq!(flat.get(name), Context::get(s, name), "attribute {name}");
            }
            assert_eq!(flat.get("not-there"), None);
            assert!(matches!(flat.json(), Cow::Owned(_)), "built on demand");
            assert_eq!(*flat.json(), struct_to_json(s));
            let with_json = with_json.expect("the same walk accepts it");
            assert!(
                matches!(with_json.json(), Cow::Borrowed(_)),
                "built by the walk"
            );
            assert_eq!(*with_json.json(), struct_to_json(s));
        }
        (Err(want), Err(got)) if exact => assert_eq!(got.to_string(), want.to_string()),
        (Err(_), Err(got)) => assert!(matches!(got, ContextError::Limit(_)), "{got:?}"),
        (want, got) => panic!("limits say {want:?}, the wire decoder {got:?} for {s:?}"),
    }
}

#[test]
fn scalars_nested_values_and_unicode_read_as_prost_decodes_them() {
    let s = strukt(vec![
        ("userId", sv("u-1")),
        ("name", sv("Zoë 🚀 ñ")),
        ("", sv("empty name")),
        ("empty", sv("")),
        ("age", num(42.0)),
        ("ratio", num(-0.125)),
        ("big", num(1e300)),
        ("beta", v(Kind::BoolValue(true))),
        ("off", v(Kind::BoolValue(false))),
        ("nothing", v(Kind::NullValue(0))),
        ("tags", list(vec![sv("a"), num(1.5), list(vec![])])),
        (
            "meta",
            obj(vec![("k", sv("v")), ("n", obj(vec![("x", num(3.0))]))]),
        ),
    ]);
    agrees(&s, &Limits::default(), true);
    let chunks = [Bytes::from(s.encode_to_vec())];
    let flat = decode(&chunks, &Limits::default()).unwrap();
    assert_eq!(flat.get("name"), Some(Attr::Str("Zoë 🚀 ñ")));
    assert_eq!(flat.get("age"), Some(Attr::Num(42.0)));
    assert_eq!(flat.get("meta"), Some(Attr::Other));
    assert_eq!(flat.get("tags"), Some(Attr::Other));
    assert_eq!(flat.get("nothing"), Some(Attr::Null));
    assert_eq!(flat.get("off"), Some(Attr::Bool(false)));
    assert_eq!(flat.json()["meta"]["n"]["x"], serde_json::json!(3));
}

#[test]
fn empty_and_absent_contexts_have_no_attributes() {
    let none: [Bytes; 0] = [];
    assert!(decode(&none, &Limits::default()).unwrap().is_empty());
    let empty = [Bytes::new()];
    let flat = decode(&empty, &Limits::default()).unwrap();
    assert!(flat.is_empty());
    assert_eq!(flat.get("userId"), None);
    // An absent context on the request decodes to no occurrences at all.
    let req = pb::AssignRequest {
        experiment: "e".into(),
        ..Default::default()
    };
    let wire = AssignRequest::decode(&req.encode_to_vec()[..]).unwrap();
    assert!(wire.context.is_empty());
    assert_eq!(&*wire.experiment, "e");
}

/// One map entry of a Struct, encoded by hand (prost never writes duplicates).
fn entry(name: &str, value: &Value) -> Vec<u8> {
    let mut e = Vec::new();
    prost::encoding::string::encode(1, &name.to_owned(), &mut e);
    prost::encoding::message::encode(2, value, &mut e);
    let mut out = Vec::new();
    prost::encoding::bytes::encode(1, &e, &mut out);
    out
}

#[test]
fn a_duplicate_name_keeps_the_last_value_as_prost_does() {
    let mut bytes = entry("a", &sv("first"));
    bytes.extend(entry("b", &num(1.0)));
    bytes.extend(entry("a", &sv("last")));
    let prost = Struct::decode(&bytes[..]).unwrap();
    assert_eq!(Context::get(&prost, "a"), Some(Attr::Str("last")));
    let chunks = [Bytes::from(bytes)];
    let flat = decode(&chunks, &Limits::default()).unwrap();
    assert_eq!(flat.len(), 2);
    assert_eq!(flat.get("a"), Some(Attr::Str("last")));
    // The engine's one walk over the names (which relies on them being
    // distinct once decoded) sees the same last value.
    let mut reads = Reads::new("a");
    reads.add("b");
    let mut seen = [None; 2];
    flat.get_reads(&reads, &mut seen);
    assert_eq!(seen, [Some(Attr::Str("last")), Some(Attr::Num(1.0))]);
    assert_eq!(*flat.json(), struct_to_json(&prost));
    let built = WireContext::decode_with_json(&chunks, &Limits::default()).unwrap();
    assert_eq!(*built.json(), struct_to_json(&prost));
    // Duplicates count once towards the attribute limit, as in the map.
    let one = Limits {
        max_context_attributes: 2,
        ..Limits::default()
    };
    assert!(decode(&chunks, &one).is_ok());
}

#[test]
fn repeated_context_fields_merge_like_prost() {
    // A request whose context field occurs twice: decoders merge the Structs.
    let first = strukt(vec![("a", sv("1")), ("b", sv("2"))]);
    let second = strukt(vec![("b", sv("3")), ("c", sv("4"))]);
    let mut bytes = Vec::new();
    prost::encoding::message::encode(2, &first, &mut bytes);
    prost::encoding::message::encode(2, &second, &mut bytes);
    let prost = pb::AssignRequest::decode(&bytes[..]).unwrap();
    let wire = AssignRequest::decode(&bytes[..]).unwrap();
    assert_eq!(wire.context.len(), 2);
    let flat = decode(&wire.context, &Limits::default()).unwrap();
    let merged = prost.context.unwrap();
    assert_eq!(merged.fields.len(), 3);
    for k in ["a", "b", "c"] {
        assert_eq!(flat.get(k), Context::get(&merged, k), "{k}");
    }
    assert_eq!(flat.get("b"), Some(Attr::Str("3")));
    assert_eq!(*flat.json(), struct_to_json(&merged));
    let built = WireContext::decode_with_json(&wire.context, &Limits::default()).unwrap();
    assert_eq!(*built.json(), struct_to_json(&merged));
}

#[test]
fn unknown_fields_are_skipped() {
    let mut bytes = entry("a", &sv("x"));
    // Unknown field 9 (varint) in the Struct, and 15 (fixed32) in the entry.
    prost::encoding::uint64::encode(9, &7, &mut bytes);
    let mut e = Vec::new();
    prost::encoding::string::encode(1, &"b".to_owned(), &mut e);
    prost::encoding::fixed32::encode(15, &1, &mut e);
    prost::encoding::message::encode(2, &num(2.0), &mut e);
    prost::encoding::bytes::encode(1, &e, &mut bytes);
    let prost = Struct::decode(&bytes[..]).unwrap();
    let chunks = [Bytes::from(bytes)];
    let flat = decode(&chunks, &Limits::default()).unwrap();
    assert_eq!(flat.get("a"), Context::get(&prost, "a"));
    assert_eq!(flat.get("b"), Some(Attr::Num(2.0)));
}

fn wire_error(bytes: Vec<u8>) -> String {
    // prost refuses these too.
    assert!(
        Struct::decode(&bytes[..]).is_err(),
        "prost accepts {bytes:?}"
    );
    let chunks = [Bytes::from(bytes)];
    let e = decode(&chunks, &Limits::default()).unwrap_err();
    assert!(matches!(e, ContextError::Wire(_)), "{e:?}");
    let status: tonic::Status = e.into();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    status.message().to_owned()
}

#[test]
fn malformed_bytes_are_invalid_argument_with_a_reason() {
    let good = entry("userId", &sv("u-1"));
    // Truncated anywhere inside: refused, never a panic.
    for cut in 1..good.len() {
        let m = wire_error(good[..cut].to_vec());
        assert!(
            m.starts_with("malformed request: field `context` is not a google.protobuf.Struct: "),
            "{m}"
        );
    }
    // A string that is not UTF-8.
    let mut e = Vec::new();
    prost::encoding::bytes::encode(1, &vec![0xff, 0xfe], &mut e);
    let mut bad = Vec::new();
    prost::encoding::bytes::encode(1, &e, &mut bad);
    assert!(wire_error(bad).contains("UTF-8"));
    // The entry as a varint instead of a message.
    assert!(wire_error(vec![0x08, 0x01]).contains("wire type"));
    // number_value as a varint.
    let mut val = Vec::new();
    prost::encoding::uint64::encode(2, &5, &mut val);
    let mut e = Vec::new();
    prost::encoding::string::encode(1, &"n".to_owned(), &mut e);
    prost::encoding::bytes::encode(2, &val, &mut e);
    let mut bad = Vec::new();
    prost::encoding::bytes::encode(1, &e, &mut bad);
    assert!(wire_error(bad).contains("number_value"));
    // A field key of tag 0.
    wire_error(vec![0x02, 0x00]);
}

fn nested(depth: usize) -> Struct {
    let mut value = sv("leaf");
    for _ in 0..depth {
        value = obj(vec![("n", value)]);
    }
    strukt(vec![("deep", value)])
}

#[test]
fn nesting_is_refused_exactly_where_prost_refuses_it() {
    let verdict = |depth: usize| {
        let req = pb::AssignRequest {
            experiment: "e".into(),
            context: Some(nested(depth)),
            ..Default::default()
        };
        let bytes = req.encode_to_vec();
        let prost_ok = pb::AssignRequest::decode(&bytes[..]).is_ok();
        let wire = AssignRequest::decode(&bytes[..]).unwrap();
        let flat = decode(&wire.context, &Limits::default());
        if let Err(e) = &flat {
            assert!(e.to_string().contains("100 messages deep"), "{e}");
        }
        (prost_ok, flat.is_ok())
    };
    let mut limit = None;
    for depth in 20..40 {
        let (prost_ok, flat_ok) = verdict(depth);
        assert_eq!(prost_ok, flat_ok, "depth {depth}");
        if !prost_ok && limit.is_none() {
            limit = Some(depth);
        }
    }
    assert!(limit.is_some(), "prost accepted every depth tried");
}

#[test]
fn malformed_values_and_every_limit_give_the_same_errors() {
    let l = Limits {
        max_context_attributes: 3,
        max_attribute_name_bytes: 8,
        max_string_value_bytes: 5,
        max_context_nodes: 10,
        max_context_bytes: 60,
        ..Limits::default()
    };
    let cases = vec![
        strukt(vec![("a", sv("ok"))]),
        strukt(vec![
            ("a", sv("x")),
            ("b", sv("y")),
            ("c", sv("z")),
            ("d", sv("w")),
        ]),
        strukt(vec![("longname!", sv("x"))]),
        strukt(vec![("a", sv("toolong"))]),
        strukt(vec![("a", list(vec![sv("ok"), sv("toolong")]))]),
        strukt(vec![("a", obj(vec![("toolongkey", num(1.0))]))]),
        // 11 values (the attribute and ten empty strings) in 9 bytes.
        strukt(vec![("a", list(vec![sv(""); 10]))]),
        strukt(vec![("a", list(vec![sv("xxxxx"); 7]))]),
        strukt(vec![("a", Value { kind: None })]),
        strukt(vec![("a", num(f64::NAN))]),
        strukt(vec![("a", list(vec![num(f64::INFINITY)]))]),
        strukt(vec![("a", obj(vec![("k", Value { kind: None })]))]),
    ];
    for s in &cases {
        agrees(s, &l, true);
    }
}

/// A random value up to `depth` levels deep, from a small alphabet of names so
/// nested maps are varied but the sweep stays deterministic.
fn random_value(rng: &mut Rng, depth: u32) -> Value {
    const NAMES: &[&str] = &["a", "b", "userId", "région", "x-y", ""];
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => sv(NAMES[rng.below(NAMES.len() as u64) as usize]),
        1 => num(rng.normal() * 1e6),
        2 => num(rng.below(1000) as f64),
        3 => v(Kind::BoolValue(rng.percent(50))),
        4 => v(Kind::NullValue(0)),
        5 => list(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => obj((0..rng.below(4))
            .map(|_| {
                (
                    NAMES[rng.below(NAMES.len() as u64) as usize],
                    random_value(rng, depth - 1),
                )
            })
            .collect()),
    }
}

#[test]
fn a_generated_sweep_agrees_with_prost_under_default_and_tight_limits() {
    let mut rng = Rng::new(14);
    let tight = Limits {
        max_context_attributes: 6,
        max_string_value_bytes: 5,
        max_context_nodes: 20,
        max_context_bytes: 120,
        ..Limits::default()
    };
    for _ in 0..3000 {
        let n = rng.below(9);
        let s = Struct {
            fields: (0..n)
                .map(|i| (format!("attr{i}"), random_value(&mut rng, 3)))
                .collect(),
        };
        agrees(&s, &Limits::default(), true);
        agrees(&s, &tight, false);
    }
}

/// The fuzz target's invariants (never looser than prost plus the limits, the
/// same attributes when both accept) over mutations of encoded contexts: bytes
/// flipped, replaced, cut and duplicated. A bounded stand-in for libFuzzer in
/// the ordinary test run.
#[test]
fn mutated_encodings_keep_the_fuzz_invariants() {
    let mut rng = Rng::new(1414);
    let mut seeds = Vec::new();
    for _ in 0..40 {
        let s = Struct {
            fields: (0..rng.below(5))
                .map(|i| (format!("k{i}"), random_value(&mut rng, 2)))
                .collect(),
        };
        seeds.push(s.encode_to_vec());
    }
    for _ in 0..20_000 {
        let mut b = seeds[rng.below(seeds.len() as u64) as usize].clone();
        for _ in 0..=rng.below(3) {
            if b.is_empty() {
                break;
            }
            let i = rng.below(b.len() as u64) as usize;
            match rng.below(4) {
                0 => b[i] ^= 1 << rng.below(8),
                1 => b[i] = rng.below(256) as u8,
                2 => b.truncate(i),
                _ => {
                    let tail = b[i..].to_vec();
                    b.extend(tail);
                }
            }
        }
        fuzz_body::run(&b);
    }
}

/// Contexts of scalars only (the shape the decoder reads without its general
/// walk: `transport/wire/scalar_entry.rs`), encoded and then mutated: the fast
/// path and the general walk (`decode_with_json` always takes the general
/// walk) accept the same inputs, read the same attributes and refuse with the
/// same error, under default and tight limits. Strings include invalid UTF-8,
/// numbers include NaN and infinities, names and strings run over the limits.
#[test]
fn scalar_entries_read_as_the_general_walk_reads_them() {
    let mut rng = Rng::new(1415);
    let tight = Limits {
        max_context_attributes: 5,
        max_attribute_name_bytes: 6,
        max_string_value_bytes: 4,
        max_context_nodes: 6,
        max_context_bytes: 40,
        ..Limits::default()
    };
    let names = ["a", "bot", "region", "userId", "plan", "a-long-name", "é"];
    let mut seeds = Vec::new();
    for _ in 0..60 {
        let mut b = Vec::new();
        for _ in 0..rng.below(8) {
            let value = match rng.below(7) {
                0 => sv("US"),
                1 => sv("a longer string value"),
                2 => v(Kind::BoolValue(rng.below(2) == 1)),
                3 => v(Kind::NullValue(0)),
                4 => num([1.5, f64::NAN, f64::INFINITY, -0.0][rng.below(4) as usize]),
                5 => sv("ü"),
                _ => list(vec![sv("x")]),
            };
            b.extend(entry(names[rng.below(names.len() as u64) as usize], &value));
        }
        seeds.push(b);
    }
    let mut checked = 0;
    for i in 0..20_000 {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..rng.below(3) {
            if b.is_empty() {
                break;
            }
            let at = rng.below(b.len() as u64) as usize;
            match rng.below(4) {
                0 => b[at] ^= 1 << rng.below(8),
                1 => b[at] = [0x80, 0xc3, 0xff, 0x00, 0x7f][rng.below(5) as usize],
                2 => b.truncate(at),
                _ => b.insert(at, rng.below(256) as u8),
            }
        }
        let chunks = [Bytes::from(b)];
        for limits in [&Limits::default(), &tight] {
            let fast = WireContext::decode(&chunks, limits);
            let general = WireContext::decode_with_json(&chunks, limits);
            match (&fast, &general) {
                (Ok(f), Ok(g)) => {
                    assert_eq!(f.len(), g.len(), "{chunks:?}");
                    for name in names {
                        assert_eq!(f.get(name), g.get(name), "{name} in {chunks:?}");
                    }
                    checked += 1;
                }
                (Err(f), Err(g)) => assert_eq!(f, g, "{chunks:?}"),
                _ => panic!("{fast:?} but {general:?} for {chunks:?}"),
            }
        }
    }
    assert!(checked > 1000, "mostly accepted inputs: {checked}");
}
