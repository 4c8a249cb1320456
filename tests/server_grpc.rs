//! End-to-end tests of the `cohortd.v1.Assignment` service against an in-process
//! server on an ephemeral loopback port, with the generated tonic client.

mod support;

use cohortd::engine::{EvalOptions, Reason};
use cohortd::transport::pb;
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use support::context::proto_ctx;
use support::server::start;
use support::sink::Seen;
use tonic::Code;

/// A unit (userId `u{i}`, country NL) whose `half` assignment has `reason`,
/// found with the engine itself (the oracle for what the server must return).
fn unit_with(server: &support::server::TestServer, key: &str, reason: Reason) -> String {
    let snap = server.store.load().unwrap();
    (0..10_000)
        .map(|i| format!("u{i}"))
        .find(|u| {
            let c = proto_ctx(&[("targetingKey", u), ("country", "NL")]);
            snap.assign(key, &c, EvalOptions::default()).unwrap().reason == reason
        })
        .expect("some unit has this reason")
}

#[tokio::test]
async fn assign_returns_the_engine_assignment_and_version() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let version = s.store.load().unwrap().version().to_owned();
    let r = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(proto_ctx(&[("targetingKey", "user-1")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.experiment, "flag");
    assert_eq!(r.variant, "on");
    assert!(r.enrolled);
    assert_eq!(r.reason(), pb::Reason::Split);
    assert_eq!(r.config_version, version);
    assert_eq!(r.status, "running");
    assert_eq!(r.value.unwrap().kind, Some(Kind::BoolValue(true)));
    assert!(!r.salt_fingerprint.is_empty());

    // No unit: never hashed; a plain flag still serves its one value, an
    // experiment that splits serves its default.
    let r = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.variant.as_str(), r.enrolled), ("on", false));
    assert_eq!(r.reason(), pb::Reason::MissingUnit);
    let r = c
        .assign(pb::AssignRequest {
            experiment: "half".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.enrolled);
    assert_eq!(r.reason(), pb::Reason::MissingUnit);

    // A completed experiment serves its winner; layers are reported.
    let r = c
        .assign(pb::AssignRequest {
            experiment: "done".into(),
            context: Some(proto_ctx(&[("targetingKey", "user-1")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.variant.as_str(), r.reason()),
        ("big", pb::Reason::Winner)
    );
    assert_eq!(r.status, "completed");
    let r = c
        .assign(pb::AssignRequest {
            experiment: "layered".into(),
            context: Some(proto_ctx(&[("targetingKey", "user-1")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.layer, "search");
}

#[tokio::test]
async fn assign_agrees_with_the_engine_and_honours_sticky() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let snap = s.store.load().unwrap();
    for i in 0..200 {
        let u = format!("user-{i}");
        let context = proto_ctx(&[("targetingKey", &u), ("country", "NL")]);
        let want = snap
            .assign("half", &context, EvalOptions::default())
            .unwrap();
        let got = c
            .assign(pb::AssignRequest {
                experiment: "half".into(),
                context: Some(context),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.variant, &*want.variant.key, "{u}");
        assert_eq!(got.enrolled, want.enrolled, "{u}");
    }
    let u = unit_with(&s, "half", Reason::Split);
    let context = proto_ctx(&[("targetingKey", &u), ("country", "NL")]);
    let natural = snap
        .assign("half", &context, EvalOptions::default())
        .unwrap();
    let other = if &*natural.variant.key == "a" {
        "b"
    } else {
        "a"
    };
    let r = c
        .assign(pb::AssignRequest {
            experiment: "half".into(),
            context: Some(context),
            sticky: [(
                "half".to_string(),
                pb::StickyAssignment {
                    variant: other.into(),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.variant.as_str(), r.reason()),
        (other, pb::Reason::Sticky)
    );
}

#[tokio::test]
async fn assign_errors_are_precise() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let e = c
        .assign(pb::AssignRequest {
            experiment: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("unknown experiment `nope`"), "{e:?}");

    let e = c
        .assign(pb::AssignRequest {
            experiment: "hafl".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("did you mean `half`?"), "{e:?}");

    // A plain flag does not bucket, so it needs no unit attribute.
    let a = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.variant, "on");
    assert!(!a.enrolled);

    let e = c
        .assign(pb::AssignRequest {
            experiment: "wip".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("draft"), "{e:?}");

    let mut bad = Struct::default();
    bad.fields
        .insert("targetingKey".into(), Value { kind: None });
    let e = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(bad),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("malformed context"), "{e:?}");
    let mut nan = Struct::default();
    nan.fields.insert(
        "age".into(),
        Value {
            kind: Some(Kind::NumberValue(f64::INFINITY)),
        },
    );
    let e = c
        .explain(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(nan),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn nothing_loaded_is_unavailable_with_the_reason() {
    let s = start(false, |_| {}).await;
    let mut c = s.client().await;
    let e = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("no config loaded yet"), "{e:?}");
    s.store
        .reject_with("experiments.yaml: flag: variants: needs at least one variant".into());
    for call in 0..4 {
        let e = match call {
            0 => c
                .assign_all(pb::AssignAllRequest::default())
                .await
                .unwrap_err(),
            1 => c
                .log_exposures(pb::LogExposuresRequest::default())
                .await
                .unwrap_err(),
            2 => c.explain(pb::AssignRequest::default()).await.unwrap_err(),
            _ => c.watch(pb::WatchRequest {}).await.unwrap_err(),
        };
        assert_eq!(e.code(), Code::Unavailable, "call {call}");
        assert!(e.message().contains("needs at least one variant"), "{e:?}");
    }
}

#[tokio::test]
async fn exposures_are_recorded_only_when_asked_and_enrolled() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let version = s.store.load().unwrap().version().to_owned();
    let call = |exposure: bool, u: String| pb::AssignRequest {
        experiment: "half".into(),
        context: Some(proto_ctx(&[("targetingKey", &u), ("country", "NL")])),
        exposure,
        ..Default::default()
    };
    let enrolled = unit_with(&s, "half", Reason::Split);
    let outside = unit_with(&s, "half", Reason::NotInTraffic);
    let r = c
        .assign(call(false, enrolled.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(s.sink.take().is_empty(), "not an exposure call");
    c.assign(call(true, outside.clone())).await.unwrap();
    assert!(s.sink.take().is_empty(), "not enrolled: not an exposure");
    c.assign(call(true, enrolled.clone())).await.unwrap();
    assert_eq!(
        s.sink.take(),
        vec![Seen {
            experiment: "half".into(),
            variant: r.variant,
            unit: enrolled,
            source: "assign",
            config_version: version,
        }]
    );
}

#[tokio::test]
async fn assign_all_serves_every_experiment_or_the_listed_ones() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let context = proto_ctx(&[("targetingKey", "user-7"), ("country", "NL")]);
    let all = c
        .assign_all(pb::AssignAllRequest {
            context: Some(context.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = all
        .assignments
        .iter()
        .map(|a| a.experiment.as_str())
        .collect();
    assert_eq!(
        keys,
        ["done", "flag", "half", "layered"],
        "drafts are not served"
    );
    assert_eq!(all.config_version, s.store.load().unwrap().version());
    assert!(
        s.sink.take().is_empty(),
        "bulk calls are not exposures by default"
    );

    let some = c
        .assign_all(pb::AssignAllRequest {
            context: Some(context.clone()),
            experiments: vec!["half".into(), "flag".into()],
            exposure: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = some
        .assignments
        .iter()
        .map(|a| a.experiment.as_str())
        .collect();
    assert_eq!(keys, ["half", "flag"]);
    let exposed = s.sink.take();
    let enrolled: Vec<_> = some.assignments.iter().filter(|a| a.enrolled).collect();
    assert_eq!(exposed.len(), enrolled.len());
    assert!(exposed
        .iter()
        .all(|e| e.source == "assign_all" && e.unit == "user-7"));

    for (key, needle) in [("nope", "unknown experiment"), ("wip", "draft")] {
        let e = c
            .assign_all(pb::AssignAllRequest {
                context: Some(context.clone()),
                experiments: vec!["flag".into(), key.into()],
                exposure: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        assert!(e.message().contains(needle), "{e:?}");
    }
    assert!(s.sink.take().is_empty(), "a failed call records nothing");
}

#[tokio::test]
async fn log_exposures_validates_every_record_and_keeps_enrolled_ones() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let enrolled = unit_with(&s, "half", Reason::Split);
    let outside = unit_with(&s, "half", Reason::NotInTraffic);
    let snap = s.store.load().unwrap();
    let variant = |u: &str| {
        let a = snap
            .assign(
                "half",
                &proto_ctx(&[("targetingKey", u), ("country", "NL")]),
                EvalOptions::default(),
            )
            .unwrap();
        a.variant.key.to_string()
    };
    let rec = |exp: &str, u: &str, v: &str| pb::ExposureRecord {
        experiment: exp.into(),
        context: Some(proto_ctx(&[("targetingKey", u), ("country", "NL")])),
        variant: v.into(),
        config_version: snap.version().into(),
    };
    let r = c
        .log_exposures(pb::LogExposuresRequest {
            exposures: vec![
                rec("half", &enrolled, &variant(&enrolled)),
                rec("half", &outside, &variant(&outside)),
                rec("flag", "user-9", "on"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 2, "the unit outside the traffic is no exposure");
    let got = s.sink.take();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].experiment, "half");
    assert_eq!(got[0].unit, enrolled);
    assert_eq!(got[1].experiment, "flag");
    assert!(got.iter().all(|e| e.source == "log_exposures"));

    let cases = [
        (
            rec("nope", "u", "a"),
            Code::NotFound,
            "exposures[1]: unknown experiment",
        ),
        (rec("wip", "u", "x"), Code::NotFound, "draft"),
        (
            rec("half", "u", "zzz"),
            Code::InvalidArgument,
            "has no variant `zzz`",
        ),
        (
            pb::ExposureRecord {
                experiment: "half".into(),
                context: Some(proto_ctx(&[("country", "NL")])),
                variant: "a".into(),
                config_version: String::new(),
            },
            Code::InvalidArgument,
            "no usable unit attribute `targetingKey`",
        ),
    ];
    for (bad, code, needle) in cases {
        let e = c
            .log_exposures(pb::LogExposuresRequest {
                exposures: vec![rec("flag", "user-9", "on"), bad],
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(needle), "{e:?}");
        assert!(s.sink.take().is_empty(), "a refused batch records nothing");
    }
}

#[tokio::test]
async fn explain_reports_every_decision_step() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let u = unit_with(&s, "half", Reason::Split);
    let r = c
        .explain(pb::AssignRequest {
            experiment: "half".into(),
            context: Some(proto_ctx(&[("targetingKey", &u), ("country", "NL")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let a = r.assignment.unwrap();
    let kinds: Vec<_> = r.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["status", "unit", "rule", "traffic", "score", "score"]
    );
    let unit = &r.steps[1];
    assert_eq!(unit.attribute, "targetingKey");
    assert_eq!(
        unit.seen.as_ref().unwrap().kind,
        Some(Kind::StringValue(u.clone()))
    );
    let rule = &r.steps[2];
    assert!(rule.passed);
    assert_eq!(rule.attribute, "country");
    assert_eq!(
        rule.seen.as_ref().unwrap().kind,
        Some(Kind::StringValue("NL".into()))
    );
    let traffic = &r.steps[3];
    assert!(traffic.passed && traffic.slot < traffic.threshold);
    assert_eq!(traffic.threshold, 1 << 31, "50% of 2^32 slots");
    let winners: Vec<_> = r.steps[4..].iter().filter(|s| s.passed).collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].variant, a.variant);
    let lowest = r.steps[4..]
        .iter()
        .min_by(|x, y| x.score.total_cmp(&y.score))
        .unwrap();
    assert_eq!(lowest.variant, a.variant, "lowest score wins");

    // A targeting miss stops at the rule, with the value it saw.
    let r = c
        .explain(pb::AssignRequest {
            experiment: "half".into(),
            context: Some(proto_ctx(&[("targetingKey", &u), ("country", "DE")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.assignment.unwrap().reason(), pb::Reason::TargetingMiss);
    let last = r.steps.last().unwrap();
    assert_eq!((last.kind.as_str(), last.passed), ("rule", false));
    assert_eq!(
        last.seen.as_ref().unwrap().kind,
        Some(Kind::StringValue("DE".into()))
    );

    // Holdout and layer draws report slot against threshold.
    let r = c
        .explain(pb::AssignRequest {
            experiment: "layered".into(),
            context: Some(proto_ctx(&[("targetingKey", &u)])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let hold = r.steps.iter().find(|s| s.kind == "holdout").unwrap();
    assert_eq!(hold.passed, hold.slot >= hold.threshold);
    assert!(hold.description.contains("hold"));
    if hold.passed {
        let layer = r.steps.iter().find(|s| s.kind == "layer").unwrap();
        assert_eq!(layer.passed, layer.slot < layer.threshold);
    }

    // Sticky steps name the variant.
    let r = c
        .explain(pb::AssignRequest {
            experiment: "half".into(),
            context: Some(proto_ctx(&[("targetingKey", &u), ("country", "NL")])),
            sticky: [(
                "half".to_string(),
                pb::StickyAssignment {
                    variant: "b".into(),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let sticky = r.steps.iter().find(|s| s.kind == "sticky").unwrap();
    assert!(sticky.passed);
    assert_eq!(sticky.variant, "b");

    let e = c
        .explain(pb::AssignRequest {
            experiment: "wip".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn watch_sends_the_version_then_one_event_per_reload() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let v0 = s.store.load().unwrap().version().to_owned();
    let mut stream = c.watch(pb::WatchRequest {}).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.initial);
    assert_eq!(first.config_version, v0);

    // Edit: change `flag`, remove `done`, add `extra`.
    let text = support::server::CONFIG
        .replace("trafficAllocation: 0.5", "trafficAllocation: 0.6")
        .replace(
            "  - key: done\n    status: completed\n    winner: big\n    variants: [small, big]\n",
            "  - key: extra\n    status: running\n    variants: [p, q]\n",
        );
    std::fs::write(s.dir.path().join("experiments.yaml"), text).unwrap();
    let cohortd::reload::ReloadOutcome::Applied(ev) =
        cohortd::reload::reload_now(s.dir.path(), &s.store)
    else {
        panic!("reload must apply")
    };
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!next.initial);
    assert_eq!(next.config_version, ev.version);
    assert_ne!(next.config_version, v0);
    assert_eq!(next.added, ["extra"]);
    assert_eq!(next.changed, ["half"]);
    assert_eq!(next.removed, ["done"]);

    // Shutdown ends the stream cleanly.
    assert!(s.running.shutdown().await, "clean shutdown");
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn limits_are_invalid_argument_naming_the_limit() {
    let s = start(true, |o| {
        o.limits.max_context_attributes = 3;
        o.limits.max_assign_all_experiments = 2;
        o.limits.max_exposure_records = 1;
        o.limits.max_string_value_bytes = 16;
        o.limits.max_message_bytes = 4096;
    })
    .await;
    let mut c = s.client().await;
    let many = proto_ctx(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
    let e = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(many),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("--max-context-attributes"), "{e:?}");

    let long = "x".repeat(17);
    let e = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(proto_ctx(&[("targetingKey", &long)])),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("--max-string-value-bytes"), "{e:?}");

    let e = c
        .assign(pb::AssignRequest {
            experiment: "k".repeat(300),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("--max-key-bytes"), "{e:?}");

    let e = c
        .assign_all(pb::AssignAllRequest {
            experiments: vec!["flag".into(), "half".into(), "done".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        e.message().contains("--max-assign-all-experiments"),
        "{e:?}"
    );

    let rec = pb::ExposureRecord {
        experiment: "flag".into(),
        context: Some(proto_ctx(&[("targetingKey", "u")])),
        variant: "on".into(),
        config_version: String::new(),
    };
    let e = c
        .log_exposures(pb::LogExposuresRequest {
            exposures: vec![rec.clone(), rec],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("--max-exposure-records"), "{e:?}");

    // Over the message size: refused by tonic from the length prefix, before
    // the message is buffered.
    let e = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(proto_ctx(&[("blob", &"y".repeat(8000))])),
            ..Default::default()
        })
        .await
        .unwrap_err();
    // tonic answers OUT_OF_RANGE; the server rewrites it: this is bad input.
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("4096"), "{e:?}");

    // Bytes that are not an AssignRequest (a Duration: field 1 is a varint where
    // AssignRequest has a string) fail to decode inside tonic, which would say
    // INTERNAL; it is the caller's bad input.
    let mut raw = tonic::client::Grpc::new(s.channel().await);
    raw.ready().await.unwrap();
    let e = raw
        .unary(
            tonic::Request::new(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            http::uri::PathAndQuery::from_static("/cohortd.v1.Assignment/Assign"),
            tonic_prost::ProstCodec::<prost_types::Duration, pb::AssignResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("decode"), "{e:?}");

    // The server is fine afterwards.
    let ok = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(proto_ctx(&[("targetingKey", "u")])),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ok.into_inner().variant, "on");
}
