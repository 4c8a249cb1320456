//! The flagd `Resolve*` requests' contexts are read straight off the wire
//! (`transport::flagd::wire`) instead of through prost's `Struct`. These tests
//! hold the two paths to the same answers: for every flag of the flagd vector
//! files and a generated set of contexts (nested objects, lists, numbers of
//! every kind, unicode, empty), `Resolver::resolve_encoded` on the encoded
//! bytes gives exactly what `Resolver::resolve` gives on the decoded `Struct`
//! (the response's bytes, `transport::flagd::encode`'s against prost's of the
//! generated message built as the services used to, for v1 and v2; or the same
//! error code and message), and the JSON built is `struct_to_json`'s, key order
//! included. Malformed bytes are INVALID_ARGUMENT with a message naming the
//! field, in process and over gRPC.

mod support;

use std::sync::Arc;

use cohortd::engine::Context;
use cohortd::reload::Store;
use cohortd::transport::convert::{json_object_to_struct, struct_to_json};
use cohortd::transport::flagd::encode::{self, Shape};
use cohortd::transport::flagd::pb_v2;
use cohortd::transport::flagd::resolve::{Resolution, Resolver, ValueType};
use cohortd::transport::flagd::wire::{ContextError, ResolveRequest, WireContext};
use cohortd::transport::limits::Limits;
use prost::Message;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as PValue};
use serde_json::{json, Map, Value};
use support::compile::compile_named;
use support::rng::Rng;
use support::runners::repo;
use support::sink::RecordingSink;

const CONTEXTS: usize = 600;
const TYPES: [ValueType; 5] = [
    ValueType::Boolean,
    ValueType::String,
    ValueType::Integer,
    ValueType::Float,
    ValueType::Object,
];

/// The JSON object the flagd evaluator reads for these context bytes (what
/// `resolve_encoded` hands a flag with targeting: built by the decoding walk),
/// checked against the same view built on demand after a plain decode.
fn decode_context(bytes: &[u8], limits: &Limits) -> Result<Map<String, Value>, ContextError> {
    let chunks = [bytes];
    let plain = WireContext::decode(&chunks, limits);
    let ctx = WireContext::decode_with_json(&chunks, limits);
    assert_eq!(plain.as_ref().err(), ctx.as_ref().err());
    let (plain, ctx) = (plain?, ctx?);
    assert!(matches!(ctx.json(), std::borrow::Cow::Borrowed(_)));
    let json = ctx.json().into_owned();
    assert_eq!(*plain.json(), json);
    Ok(json)
}

fn scalar(r: &mut Rng) -> Value {
    match r.below(12) {
        0 => json!(null),
        1 => json!(r.percent(50)),
        2 => json!(r.below(1000)),
        3 => json!(-(r.below(1 << 50) as i64)),
        4 => json!(r.below(10_000) as f64 / 7.0),
        5 => json!(*r.pick(&[
            1e300,
            -0.0,
            9.0e15,
            9.5e15,
            2.0f64.powi(53) + 2.0,
            1e-9,
            0.5
        ])),
        6 => json!(*r.pick(&[
            "",
            "ünïcødé",
            "日本語",
            "emoji 🎉",
            "tab\tnew\nline",
            "\u{0}"
        ])),
        7 => json!(format!("user-{}", r.below(1000))),
        8 => json!(*r.pick(&["1.2.3", "2.1.0", "v1.4", "not-a-version", "3.0.0-beta.1"])),
        9 => json!(format!(
            "u{}@{}",
            r.below(100),
            r.pick(&["example.com", "corp.io"])
        )),
        10 => json!(*r.pick(&["de", "us", "beta", "gold"])),
        _ => json!(r.below(30)),
    }
}

fn value(r: &mut Rng, depth: u32) -> Value {
    if depth == 0 || r.percent(60) {
        return scalar(r);
    }
    if r.percent(50) {
        let n = r.below(5);
        Value::Array((0..n).map(|_| value(r, depth - 1)).collect())
    } else {
        let n = r.below(5);
        let mut m = Map::new();
        for _ in 0..n {
            let k = r.pick(&["id", "tier", "a", "b", "long-key", "ключ", ""]);
            m.insert((*k).to_owned(), value(r, depth - 1));
        }
        Value::Object(m)
    }
}

/// A context using the attributes the vector files target on, plus random
/// nested values under random names; sometimes empty.
fn context(r: &mut Rng) -> Map<String, Value> {
    let mut m = Map::new();
    if r.percent(5) {
        return m;
    }
    let names = [
        "targetingKey",
        "email",
        "age",
        "score",
        "version",
        "appVersion",
        "country",
        "tags",
        "nums",
        "plan",
        "weight",
        "account",
        "user",
        "zeta",
        "Ω",
    ];
    for name in names {
        if r.percent(55) {
            let v = match name {
                "account" if r.percent(70) => json!({"id": scalar(r)}),
                "user" if r.percent(70) => json!({"tier": *r.pick(&["gold", "silver"])}),
                "targetingKey" => json!(format!("user-{}", r.below(10_000))),
                _ => value(r, 3),
            };
            m.insert(name.into(), v);
        }
    }
    m
}

/// The flagd vector files, plus the flagd protocol fixture's cohortd
/// experiments (their metadata: status, epoch, salt fingerprint).
fn vector_files() -> Vec<(String, String)> {
    let dir = repo().join("tests/vectors/flagd");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no flagd vectors in {}", dir.display());
    let mut out: Vec<(String, String)> = files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.push(("fixture.yaml".into(), support::flagd::CONFIG.into()));
    out
}

fn resolver(name: &str, text: &str) -> (Resolver, Vec<String>) {
    let snap = compile_named(name, text);
    let keys = snap.flags().map(|f| f.key().to_owned()).collect();
    let store = Store::new();
    store.install(snap);
    (
        Resolver::new(store, Arc::new(RecordingSink::default()), Limits::default()),
        keys,
    )
}

/// A resolver over tests/vectors/flagd/all_operators.flagd.json.
fn all_operators() -> Resolver {
    let path = repo().join("tests/vectors/flagd/all_operators.flagd.json");
    resolver("flags.flagd.json", &std::fs::read_to_string(path).unwrap()).0
}

/// A resolution or an error, comparable across the two paths.
fn outcome<T, E: Into<tonic::Status>>(r: Result<T, E>) -> Result<T, (tonic::Code, String)> {
    r.map_err(|e| {
        let s: tonic::Status = e.into();
        (s.code(), s.message().to_owned())
    })
}

#[test]
fn wire_path_answers_as_the_struct_path_for_every_vector_flag() {
    let mut r = Rng::new(0xf1a9_d0e5_0000_0013);
    let contexts: Vec<Struct> = (0..CONTEXTS)
        .map(|_| json_object_to_struct(&context(&mut r)))
        .collect();
    let mut compared = 0usize;
    let mut resolved = 0usize;
    for (name, text) in vector_files() {
        let (resolver, keys) = resolver(&name, &text);
        assert!(!keys.is_empty(), "{name} has no flags");
        for ctx in &contexts {
            let bytes = ctx.encode_to_vec();
            for key in &keys {
                for want in TYPES {
                    for v1 in [false, true] {
                        let shape = if v1 { Shape::V1 } else { Shape::V2 };
                        let old = outcome(resolver.resolve(key, Some(ctx), want, v1, None))
                            .map(|r| old_response_bytes(&r, want, v1));
                        let new = resolver
                            .resolve_encoded(key, &bytes, want, v1, None, |r| {
                                encode::write(&r, want, shape)
                            })
                            .and_then(|written| written);
                        let new = outcome(new).map(|e| e.0);
                        assert_eq!(
                            old, new,
                            "{name}: flag {key}, {want:?}, v1={v1}, context {ctx:?}"
                        );
                        compared += 1;
                        resolved += usize::from(old.is_ok());
                    }
                }
            }
        }
    }
    // Both successes and errors were compared.
    assert!(
        resolved > compared / 10,
        "{resolved} of {compared} resolved"
    );
    assert!(resolved < compared, "no errors among {compared}");
}

#[test]
fn decoded_json_is_struct_to_json_key_order_included() {
    let mut r = Rng::new(0x0dec_0de0_0000_0013);
    for _ in 0..2000 {
        let ctx = json_object_to_struct(&context(&mut r));
        let got = decode_context(&ctx.encode_to_vec(), &Limits::default()).unwrap();
        let want = struct_to_json(&ctx);
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
    }
    // An absent context (no bytes) is the empty object.
    assert!(decode_context(&[], &Limits::default()).unwrap().is_empty());
}

#[test]
fn duplicate_keys_and_repeated_kinds_decode_as_prost_does() {
    // Two encodings concatenated: protobuf merges them (later map entries win,
    // a repeated struct_value merges, a repeated list_value appends).
    let a = json_object_to_struct(
        json!({"k": "first", "o": {"x": 1, "y": 2}, "l": [1, 2], "s": 5})
            .as_object()
            .unwrap(),
    );
    let b = json_object_to_struct(
        json!({"k": "second", "s": "now a string"})
            .as_object()
            .unwrap(),
    );
    let mut bytes = a.encode_to_vec();
    bytes.extend(b.encode_to_vec());
    let want = Struct::decode(&bytes[..]).unwrap();
    let got = decode_context(&bytes, &Limits::default()).unwrap();
    assert_eq!(got, struct_to_json(&want));
    // A Value carrying struct_value twice: merged into one object.
    let merged = PValue {
        kind: Some(Kind::StructValue(Struct::default())),
    };
    let mut v = merged.encode_to_vec();
    v.extend(
        PValue {
            kind: Some(Kind::StructValue(json_object_to_struct(
                json!({"z": true}).as_object().unwrap(),
            ))),
        }
        .encode_to_vec(),
    );
    let mut entry = Vec::new();
    prost::encoding::string::encode(1, &"m".to_owned(), &mut entry);
    prost::encoding::bytes::encode(2, &v, &mut entry);
    let mut ctx = Vec::new();
    prost::encoding::bytes::encode(1, &entry, &mut ctx);
    let want = Struct::decode(&ctx[..]).unwrap();
    assert_eq!(
        decode_context(&ctx, &Limits::default()).unwrap(),
        struct_to_json(&want)
    );
}

#[test]
fn limits_and_unrepresentable_values_give_the_struct_paths_errors() {
    let resolver = all_operators();
    let long = "x".repeat(5000);
    let many: Map<String, Value> = (0..200).map(|i| (format!("a{i}"), json!(i))).collect();
    let nested_long = json!({"deep": {"list": [1, {"k": long.clone()}]}});
    let mut cases: Vec<Struct> = vec![
        json_object_to_struct(&many),
        json_object_to_struct(json!({"s": long}).as_object().unwrap()),
        json_object_to_struct(nested_long.as_object().unwrap()),
        json_object_to_struct(json!({"x".repeat(300): 1}).as_object().unwrap()),
    ];
    let nan = |n: f64| PValue {
        kind: Some(Kind::NumberValue(n)),
    };
    let mut s = Struct::default();
    s.fields.insert("score".into(), nan(f64::NAN));
    cases.push(s);
    let mut s = Struct::default();
    s.fields.insert(
        "l".into(),
        PValue {
            kind: Some(Kind::ListValue(ListValue {
                values: vec![nan(1.0), nan(f64::INFINITY)],
            })),
        },
    );
    cases.push(s);
    let mut s = Struct::default();
    s.fields.insert("empty".into(), PValue { kind: None });
    cases.push(s);
    for ctx in &cases {
        let old = outcome(resolver.resolve("split", Some(ctx), ValueType::String, false, None));
        let new = outcome(resolver.resolve_encoded(
            "split",
            &ctx.encode_to_vec(),
            ValueType::String,
            false,
            None,
            |_| (),
        ));
        assert!(old.is_err(), "{ctx:?} should be refused");
        assert_eq!(old.map(drop), new.map(drop), "{ctx:?}");
    }
}

/// Bytes that are no `google.protobuf.Struct`.
fn malformed_contexts() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("truncated length", vec![0x0a, 0x10, 0x0a]),
        ("truncated varint", vec![0x0a, 0x80]),
        ("wrong wire type", vec![0x0d, 0, 0, 0, 0]),
        ("field number 0", vec![0x02, 0x00]),
        (
            "invalid UTF-8 key",
            vec![0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe],
        ),
        (
            "bad number wire type",
            vec![0x0a, 0x07, 0x0a, 0x01, b'n', 0x12, 0x02, 0x10, 0x01],
        ),
        ("invalid wire type 7", vec![0x0f]),
    ]
}

#[test]
fn malformed_context_bytes_are_invalid_argument_naming_the_field() {
    let resolver = all_operators();
    for (what, bytes) in malformed_contexts() {
        // prost refuses the same bytes, so they are malformed for either path.
        assert!(
            Struct::decode(&bytes[..]).is_err(),
            "{what}: prost accepts it"
        );
        let err = resolver
            .resolve_encoded("split", &bytes, ValueType::String, false, None, |_| ())
            .expect_err(what);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
        assert!(
            err.message()
                .contains("field `context` is not a google.protobuf.Struct"),
            "{what}: {}",
            err.message()
        );
    }
}

#[tokio::test]
async fn malformed_context_over_grpc_is_invalid_argument_and_the_server_keeps_serving() {
    let text = std::fs::read_to_string(repo().join("tests/vectors/flagd/all_operators.flagd.json"))
        .unwrap();
    let store = Store::new();
    store.install(compile_named("flags.flagd.json", &text));
    let server = support::flagd::start(store, std::time::Duration::from_secs(20)).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let call = |context: Vec<u8>| {
        let channel = channel.clone();
        async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.unwrap();
            let codec =
                tonic_prost::ProstCodec::<ResolveRequest, pb_v2::ResolveStringResponse>::default();
            let path =
                http::uri::PathAndQuery::from_static("/flagd.evaluation.v2.Service/ResolveString");
            let req = tonic::Request::new(ResolveRequest {
                flag_key: "split".into(),
                context,
            });
            grpc.unary(req, path, codec).await.map(|r| r.into_inner())
        }
    };
    for (what, bytes) in malformed_contexts() {
        let err = call(bytes).await.expect_err(what);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
        assert!(
            err.message().contains("field `context`"),
            "{what}: {}",
            err.message()
        );
    }
    // The same raw call with a good context answers as the typed client does.
    let ctx = json_object_to_struct(json!({"targetingKey": "user-7"}).as_object().unwrap());
    let raw = call(ctx.encode_to_vec()).await.unwrap();
    let mut typed = pb_v2::service_client::ServiceClient::new(channel.clone());
    let want = typed
        .resolve_string(pb_v2::ResolveStringRequest {
            flag_key: "split".into(),
            context: Some(ctx),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(raw, want);
    assert!(raw.value.is_some_and(|v| !v.is_empty()));
}

/// The response bytes the services sent before `encode`: the generated
/// message built from a [`Resolution`] as the old service macro built it (v1:
/// zero values for the caller's default and an empty object; v2: optional
/// fields left unset), encoded by prost.
fn old_response_bytes(r: &Resolution, want: ValueType, v1: bool) -> Vec<u8> {
    use cohortd::transport::flagd::pb_v1;
    use cohortd::transport::flagd::resolve::FlagValue as F;
    let reason = r.reason.to_owned();
    let metadata = Some(r.metadata.clone());
    let variant = r.variant.clone();
    macro_rules! typed {
        ($pb:ident, $resp:ident, $got:ident, $v1:expr) => {{
            let value = match &r.value {
                Some(F::$got(v)) => Some(v.clone()),
                None => None,
                Some(other) => panic!("{other:?} is not a {want:?}"),
            };
            if $v1 {
                typed!(@v1 $pb, $resp, value, $got)
            } else {
                pb_v2::$resp {
                    value,
                    reason,
                    variant,
                    metadata,
                }
                .encode_to_vec()
            }
        }};
        (@v1 $pb:ident, $resp:ident, $value:ident, Object) => {
            pb_v1::$resp {
                value: Some($value.unwrap_or_default()),
                reason,
                variant: variant.unwrap_or_default(),
                metadata,
            }
            .encode_to_vec()
        };
        (@v1 $pb:ident, $resp:ident, $value:ident, $got:ident) => {
            pb_v1::$resp {
                value: $value.unwrap_or_default(),
                reason,
                variant: variant.unwrap_or_default(),
                metadata,
            }
            .encode_to_vec()
        };
    }
    match want {
        ValueType::Boolean => typed!(pb, ResolveBooleanResponse, Bool, v1),
        ValueType::String => typed!(pb, ResolveStringResponse, String, v1),
        ValueType::Float => typed!(pb, ResolveFloatResponse, Float, v1),
        ValueType::Integer => typed!(pb, ResolveIntResponse, Int, v1),
        ValueType::Object => typed!(pb, ResolveObjectResponse, Object, v1),
    }
}
