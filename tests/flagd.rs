//! The flagd evaluation protocol (v1 and v2) through real tonic clients: every
//! RPC, value types, reasons, errors and their status codes, metadata, exposures
//! and the EventStream.

mod support;

use std::time::Duration;

use cohortd::engine::{EvalOptions, Reason};
use cohortd::reload::Store;
use cohortd::transport::flagd::pb_v1 as v1;
use cohortd::transport::flagd::pb_v2 as v2;
use prost_types::value::Kind;
use prost_types::Struct;
use support::compile::compile_yaml;
use support::context::proto_ctx;
use support::flagd::{start, store, CONFIG};
use support::sink::Seen;
use tonic::Code;

type V2Client = v2::service_client::ServiceClient<tonic::transport::Channel>;
type V1Client = v1::service_client::ServiceClient<tonic::transport::Channel>;

const LONG: Duration = Duration::from_secs(3600);

fn user(id: &str) -> Option<Struct> {
    Some(proto_ctx(&[("targetingKey", id)]))
}

fn field<'a>(s: &'a Struct, k: &str) -> &'a Kind {
    s.fields[k].kind.as_ref().unwrap()
}

fn str_field(s: &Struct, k: &str) -> String {
    match field(s, k) {
        Kind::StringValue(v) => v.clone(),
        other => panic!("{k} is {other:?}"),
    }
}

/// The first test users (u0, u1, ...) the engine puts in / leaves out of `key`.
fn users(key: &str, enrolled: bool, n: usize) -> Vec<String> {
    let snap = compile_yaml(CONFIG);
    (0..10_000)
        .map(|i| format!("u{i}"))
        .filter(|u| {
            let a = snap
                .assign(
                    key,
                    &proto_ctx(&[("targetingKey", u)]),
                    EvalOptions::default(),
                )
                .unwrap();
            a.enrolled == enrolled
        })
        .take(n)
        .collect()
}

/// The variant key the engine assigns.
fn engine_variant(key: &str, unit: &str) -> String {
    let snap = compile_yaml(CONFIG);
    let a = snap
        .assign(
            key,
            &proto_ctx(&[("targetingKey", unit)]),
            EvalOptions::default(),
        )
        .unwrap();
    assert_eq!(a.reason, Reason::Split);
    a.variant.key.to_string()
}

async fn v2_client(url: String) -> V2Client {
    V2Client::connect(url).await.unwrap()
}

#[tokio::test]
async fn v2_resolves_every_value_type_with_engine_variants() {
    let srv = start(store(), LONG).await;
    let mut c = v2_client(srv.url()).await;

    // Boolean kill switch: STATIC, with or without a targeting key.
    for context in [None, user("u1")] {
        let r = c
            .resolve_boolean(v2::ResolveBooleanRequest {
                flag_key: "kill-switch".into(),
                context,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.value, r.variant.as_deref(), r.reason.as_str()),
            (Some(true), Some("on"), "STATIC")
        );
    }

    // Integer rollout: enrolled users get 250 (SPLIT), the others the default 100.
    for u in users("upload-limit-mb", true, 3) {
        let r = c
            .resolve_int(v2::ResolveIntRequest {
                flag_key: "upload-limit-mb".into(),
                context: user(&u),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.value, r.variant.as_deref(), r.reason.as_str()),
            (Some(250), Some("new"), "SPLIT")
        );
    }
    for u in users("upload-limit-mb", false, 3) {
        let r = c
            .resolve_int(v2::ResolveIntRequest {
                flag_key: "upload-limit-mb".into(),
                context: user(&u),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.value, r.variant.as_deref(), r.reason.as_str()),
            (Some(100), Some("old"), "DEFAULT")
        );
    }

    // String, float and object splits follow the engine's variant for each user.
    for i in 0..20 {
        let u = format!("user-{i}");
        let r = c
            .resolve_string(v2::ResolveStringRequest {
                flag_key: "greeting".into(),
                context: user(&u),
            })
            .await
            .unwrap()
            .into_inner();
        let want = engine_variant("greeting", &u);
        let value = if want == "en" { "hello" } else { "bonjour" };
        assert_eq!(
            (r.value.as_deref(), r.variant.as_deref(), r.reason.as_str()),
            (Some(value), Some(want.as_str()), "SPLIT")
        );

        let r = c
            .resolve_float(v2::ResolveFloatRequest {
                flag_key: "price-multiplier".into(),
                context: user(&u),
            })
            .await
            .unwrap()
            .into_inner();
        let want = engine_variant("price-multiplier", &u);
        let value = if want == "low" { 0.9 } else { 1.25 };
        assert_eq!(
            (r.value, r.variant.as_deref()),
            (Some(value), Some(want.as_str()))
        );

        let r = c
            .resolve_object(v2::ResolveObjectRequest {
                flag_key: "checkout-config".into(),
                context: user(&u),
            })
            .await
            .unwrap()
            .into_inner();
        let want = engine_variant("checkout-config", &u);
        let obj = r.value.unwrap();
        let steps = if want == "one-page" { 1.0 } else { 3.0 };
        assert_eq!(field(&obj, "steps"), &Kind::NumberValue(steps));
        assert_eq!(field(&obj, "express"), &Kind::BoolValue(want == "one-page"));
        assert_eq!(r.variant.as_deref(), Some(want.as_str()));
    }
}

#[tokio::test]
async fn reasons_cover_winner_disabled_default_and_missing_unit() {
    let srv = start(store(), LONG).await;
    let mut c = v2_client(srv.url()).await;
    let s = |flag: &str, context: Option<Struct>| v2::ResolveStringRequest {
        flag_key: flag.into(),
        context,
    };

    let r = c
        .resolve_string(s("tour", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value.as_deref(), r.variant.as_deref(), r.reason.as_str()),
        (Some("short"), Some("short"), "STATIC")
    );
    let r = c
        .resolve_string(s("old-test", user("u1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value.as_deref(), r.variant.as_deref(), r.reason.as_str()),
        (Some("control"), Some("control"), "DISABLED")
    );
    let r = c
        .resolve_string(s("beta-only", user("u1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value.as_deref(), r.variant.as_deref(), r.reason.as_str()),
        (Some("off"), Some("off"), "DEFAULT")
    );
    let mut beta = proto_ctx(&[("targetingKey", "u1"), ("plan", "beta")]);
    let r = c
        .resolve_string(s("beta-only", Some(beta.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.reason, "SPLIT");

    // A split experiment without its unit attribute is an error, not a guess.
    beta.fields.remove("targetingKey");
    let e = c
        .resolve_string(s("beta-only", Some(beta)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().starts_with("TARGETING_KEY_MISSING") && e.message().contains("`targetingKey`"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn type_mismatch_is_invalid_argument_and_unknown_flags_not_found() {
    let srv = start(store(), LONG).await;
    let mut c = v2_client(srv.url()).await;

    let e = c
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "greeting".into(),
            context: user("u1"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("TYPE_MISMATCH"), "{}", e.message());
    assert!(e.message().contains("string value"), "{}", e.message());

    // 0.9 is not an integer; true is not an object.
    let e = c
        .resolve_int(v2::ResolveIntRequest {
            flag_key: "price-multiplier".into(),
            context: user("u1"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .resolve_object(v2::ResolveObjectRequest {
            flag_key: "kill-switch".into(),
            context: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    for flag in ["no-such-flag", "unfinished"] {
        let e = c
            .resolve_string(v2::ResolveStringRequest {
                flag_key: flag.into(),
                context: user("u1"),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        assert!(
            e.message().starts_with("FLAG_NOT_FOUND") && e.message().contains(flag),
            "{}",
            e.message()
        );
    }
    let e = c
        .resolve_string(v2::ResolveStringRequest {
            flag_key: "kill-swich".into(),
            context: user("u1"),
        })
        .await
        .unwrap_err();
    assert!(
        e.message().contains("did you mean `kill-switch`?"),
        "{}",
        e.message()
    );
    assert!(srv.sink.take().is_empty(), "errors record no exposure");
    // Integers are floats too.
    let r = c
        .resolve_float(v2::ResolveFloatRequest {
            flag_key: "upload-limit-mb".into(),
            context: user(&users("upload-limit-mb", true, 1)[0]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.value, Some(250.0));
}

#[tokio::test]
async fn metadata_carries_version_status_epoch_and_salt_fingerprint() {
    let srv = start(store(), LONG).await;
    let snap = srv.store.load().unwrap();
    let mut c = v2_client(srv.url()).await;
    let r = c
        .resolve_string(v2::ResolveStringRequest {
            flag_key: "greeting".into(),
            context: user("u7"),
        })
        .await
        .unwrap()
        .into_inner();
    let m = r.metadata.unwrap();
    let e = snap.experiment("greeting").unwrap();
    assert_eq!(str_field(&m, "configVersion"), snap.version());
    assert_eq!(str_field(&m, "experimentStatus"), "running");
    assert_eq!(str_field(&m, "saltFingerprint"), &*e.salt_fingerprint);
    assert_eq!(field(&m, "epoch"), &Kind::NumberValue(f64::from(e.epoch)));
    assert_eq!(field(&m, "enrolled"), &Kind::BoolValue(true));
    assert_eq!(str_field(&m, "cohortdReason"), "split");
}

#[tokio::test]
async fn enrolled_evaluations_are_flagd_exposures() {
    let srv = start(store(), LONG).await;
    let mut c = v2_client(srv.url()).await;
    let inside = users("upload-limit-mb", true, 1).remove(0);
    let outside = users("upload-limit-mb", false, 1).remove(0);
    for u in [&inside, &outside] {
        c.resolve_int(v2::ResolveIntRequest {
            flag_key: "upload-limit-mb".into(),
            context: user(u),
        })
        .await
        .unwrap();
    }
    // Not enrolled: a stopped experiment and a targeting miss.
    c.resolve_string(v2::ResolveStringRequest {
        flag_key: "old-test".into(),
        context: user("u1"),
    })
    .await
    .unwrap();
    c.resolve_string(v2::ResolveStringRequest {
        flag_key: "beta-only".into(),
        context: user("u1"),
    })
    .await
    .unwrap();
    assert_eq!(
        srv.sink.take(),
        vec![Seen {
            experiment: "upload-limit-mb".into(),
            variant: "new".into(),
            unit: inside,
            source: "flagd",
            config_version: compile_yaml(CONFIG).version().to_owned(),
        }]
    );
}

#[tokio::test]
async fn v1_serves_every_rpc_and_resolve_all() {
    let srv = start(store(), LONG).await;
    let mut c = V1Client::connect(srv.url()).await.unwrap();
    let u = users("upload-limit-mb", true, 1).remove(0);

    let r = c
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "kill-switch".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value, r.variant.as_str(), r.reason.as_str()),
        (true, "on", "STATIC")
    );
    let r = c
        .resolve_int(v1::ResolveIntRequest {
            flag_key: "upload-limit-mb".into(),
            context: user(&u),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value, r.reason.as_str()), (250, "SPLIT"));
    let r = c
        .resolve_string(v1::ResolveStringRequest {
            flag_key: "tour".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value.as_str(), r.reason.as_str()), ("short", "STATIC"));
    let r = c
        .resolve_float(v1::ResolveFloatRequest {
            flag_key: "price-multiplier".into(),
            context: user(&u),
        })
        .await
        .unwrap()
        .into_inner();
    let want = engine_variant("price-multiplier", &u);
    assert_eq!(r.variant, want);
    let r = c
        .resolve_object(v1::ResolveObjectRequest {
            flag_key: "checkout-config".into(),
            context: user(&u),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.variant, engine_variant("checkout-config", &u));
    assert!(r.value.unwrap().fields.contains_key("steps"));
    let e = c
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "greeting".into(),
            context: user(&u),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "nope".into(),
            context: user(&u),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // ResolveAll with a unit: every served flag, numbers as doubles, no drafts.
    let all = c
        .resolve_all(v1::ResolveAllRequest { context: user(&u) })
        .await
        .unwrap()
        .into_inner();
    let mut keys: Vec<&str> = all.flags.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "beta-only",
            "checkout-config",
            "greeting",
            "kill-switch",
            "old-test",
            "price-multiplier",
            "tour",
            "upload-limit-mb"
        ]
    );
    let limit = &all.flags["upload-limit-mb"];
    assert_eq!(limit.value, Some(v1::any_flag::Value::DoubleValue(250.0)));
    assert_eq!(
        (limit.variant.as_str(), limit.reason.as_str()),
        ("new", "SPLIT")
    );
    assert_eq!(
        all.flags["kill-switch"].value,
        Some(v1::any_flag::Value::BoolValue(true))
    );
    assert!(matches!(
        all.flags["checkout-config"].value,
        Some(v1::any_flag::Value::ObjectValue(_))
    ));
    let set = all.metadata.unwrap();
    assert_eq!(
        str_field(&set, "configVersion"),
        srv.store.load().unwrap().version()
    );

    // Without a unit, split flags are left out; unit-independent ones remain.
    let all = c
        .resolve_all(v1::ResolveAllRequest { context: None })
        .await
        .unwrap()
        .into_inner();
    let mut keys: Vec<&str> = all.flags.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["kill-switch", "old-test", "tour"]);
    // Only the single v1 resolutions of enrolled units were exposures; ResolveAll
    // records none.
    let seen = srv.sink.take();
    assert!(seen.iter().all(|s| s.source == "flagd" && s.unit == u));
    assert_eq!(seen.len(), 3, "int, float and object splits: {seen:?}");
}

async fn next_v2(s: &mut tonic::Streaming<v2::EventStreamResponse>) -> v2::EventStreamResponse {
    tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .expect("stream open")
}

fn changed_flags(ev: &v2::EventStreamResponse) -> Vec<(String, String)> {
    let data = ev.data.as_ref().unwrap();
    let Kind::StructValue(flags) = field(data, "flags") else {
        panic!("flags is not a struct")
    };
    let mut out: Vec<(String, String)> = flags
        .fields
        .iter()
        .map(|(k, v)| match &v.kind {
            Some(Kind::StructValue(s)) => (k.clone(), str_field(s, "type")),
            other => panic!("{other:?}"),
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn event_stream_sends_ready_changes_and_keep_alives() {
    let srv = start(store(), Duration::from_millis(200)).await;
    let mut c = v2_client(srv.url()).await;
    let mut s = c
        .event_stream(v2::EventStreamRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_v2(&mut s).await.r#type, "provider_ready");

    // Stop the kill switch, add a flag, drop the draft.
    let next = CONFIG
        .replace(
            "  - key: kill-switch\n    status: running",
            "  - key: kill-switch\n    status: stopped",
        )
        .replace(
            "  - key: unfinished\n    status: draft\n    variants: [a, b]\n",
            "  - key: brand-new\n    status: running\n    variants: [a]\n",
        );
    srv.store.install(compile_yaml(&next)).expect("a change");
    let ev = loop {
        let ev = next_v2(&mut s).await;
        if ev.r#type != "keep_alive" {
            break ev;
        }
    };
    assert_eq!(ev.r#type, "configuration_change");
    assert_eq!(
        changed_flags(&ev),
        [
            ("brand-new".to_string(), "write".to_string()),
            ("kill-switch".to_string(), "update".to_string()),
            ("unfinished".to_string(), "delete".to_string()),
        ]
    );
    // The stopped kill switch now serves its default to everyone.
    let r = c
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "kill-switch".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value, r.variant.as_deref(), r.reason.as_str()),
        (Some(false), Some("off"), "DISABLED")
    );
    // An idle stream keeps itself alive.
    assert_eq!(next_v2(&mut s).await.r#type, "keep_alive");
}

#[tokio::test]
async fn v1_event_stream_and_an_unloaded_store() {
    let store = Store::new();
    let srv = start(store.clone(), LONG).await;
    let mut c = V1Client::connect(srv.url()).await.unwrap();
    let e = c
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "kill-switch".into(),
            context: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    let mut s = c
        .event_stream(v1::EventStreamRequest {})
        .await
        .unwrap()
        .into_inner();
    // Nothing is ready until a config is installed.
    let early = tokio::time::timeout(Duration::from_millis(300), s.message()).await;
    assert!(
        early.is_err(),
        "no event before the first config: {early:?}"
    );
    store.install(compile_yaml(CONFIG));
    let ev = tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.r#type, "provider_ready");
}

/// The plain-flag forms in the bundled example config behave as documented.
#[tokio::test]
async fn example_plain_flags_kill_switch_and_rollout() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs/flags.yaml");
    let snap = cohortd::Snapshot::load(&path).unwrap();
    let store = Store::new();
    store.install(snap.clone());
    let srv = start(store, LONG).await;
    let mut c = v2_client(srv.url()).await;

    let r = c
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "payments-enabled".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value, r.reason.as_str()), (Some(true), "STATIC"));

    let n = 1000;
    let mut rolled = 0;
    for i in 0..n {
        let u = format!("user-{i}");
        let r = c
            .resolve_int(v2::ResolveIntRequest {
                flag_key: "upload-limit-mb".into(),
                context: user(&u),
            })
            .await
            .unwrap()
            .into_inner();
        let a = snap
            .assign(
                "upload-limit-mb",
                &proto_ctx(&[("targetingKey", &u)]),
                EvalOptions::default(),
            )
            .unwrap();
        let want = if a.enrolled { 250 } else { 100 };
        assert_eq!(r.value, Some(want), "{u}");
        rolled += usize::from(a.enrolled);
    }
    // 20% rollout: binomial(1000, 0.2) has sd ~12.6; allow 4 sd.
    assert!((150..=250).contains(&rolled), "{rolled} of {n} rolled out");
}

#[tokio::test]
async fn event_streams_end_when_the_stop_signal_fires() {
    let (fire, fired) = tokio::sync::watch::channel(false);
    let stop: cohortd::transport::flagd::events::StopSignal = std::sync::Arc::new(move || {
        let mut fired = fired.clone();
        Box::pin(async move {
            let _ = fired.wait_for(|f| *f).await;
        })
    });
    let srv = support::flagd::start_with(
        store(),
        cohortd::transport::flagd::FlagdOptions {
            keep_alive: LONG,
            stop: Some(stop),
            ..Default::default()
        },
    )
    .await;
    let mut c = v2_client(srv.url()).await;
    let mut s = c
        .event_stream(v2::EventStreamRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_v2(&mut s).await.r#type, "provider_ready");
    fire.send_replace(true);
    let end = tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .expect("the stream ends within 10 s");
    assert!(matches!(end, Ok(None)), "clean end of stream, got {end:?}");
}

/// A ramp changes answers without a config change, so a ramped single-variant
/// flag is never STATIC (providers would cache it).
#[tokio::test]
async fn ramped_flags_are_split_not_static() {
    let store = Store::new();
    store.install(compile_yaml(
        r#"
experiments:
  - key: ramped
    status: running
    trafficSchedule:
      - {at: "2099-01-01T00:00:00Z", trafficAllocation: 0.5, allowDecrease: true}
    variants:
      - {key: "on", value: true}
      - {key: "off", value: false, weight: 0}
    defaultVariant: "off"
"#,
    ));
    let srv = start(store, LONG).await;
    let mut c = v2_client(srv.url()).await;
    let r = c
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "ramped".into(),
            context: user("u1"),
        })
        .await
        .unwrap()
        .into_inner();
    // Full traffic until 2099: everyone is in, by hashing.
    assert_eq!(
        (r.value, r.variant.as_deref(), r.reason.as_str()),
        (Some(true), Some("on"), "SPLIT")
    );
    let e = c
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "ramped".into(),
            context: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}
