//! Exposures of flagd-format flags, through the real server (flagd v2 gRPC and
//! OFREP on their listeners) to a real OTLP receiver: a single evaluation whose
//! targeting went through `fractional` is one exposure, `split` when the
//! variant is `fractional`'s pick and `targeting_match` when a branch that looked
//! at its result chose; deduped across transports like experiment exposures;
//! none for static, disabled, plain targeting, a missing targeting key or bulk
//! evaluation.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cohortd::exposure::pipeline::PipelineConfig;
use cohortd::server::Bound;
use cohortd::transport::flagd::{pb_v1 as v1, pb_v2 as v2};
use support::context::proto_ctx;
use support::http::ofrep_post;
use support::otlp::{attrs, Receiver, V};
use support::pipeline::serve_with;

const FLAGS: &str = r#"{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"flagSetId": "checkout-set", "team": "growth"},
  "flags": {
    "split-flag": {
      "state": "ENABLED",
      "variants": {"a": "A", "b": "B"},
      "defaultVariant": "a",
      "targeting": {"fractional": [["a", 50], ["b", 50]]}
    },
    "gated": {
      "state": "ENABLED",
      "variants": {"special": "S", "a": "A", "b": "B"},
      "defaultVariant": "a",
      "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "special",
                           {"fractional": [["a", 1], ["b", 1]]}]}
    },
    "looks-at": {
      "state": "ENABLED",
      "variants": {"on": "ON", "off": "OFF"},
      "defaultVariant": "off",
      "targeting": {"if": [{"==": [{"fractional": [["x", 1], ["y", 1]]}, "x"]}, "on", "off"]}
    },
    "static": {
      "state": "ENABLED",
      "variants": {"on": "ON", "off": "OFF"},
      "defaultVariant": "on"
    },
    "disabled": {
      "state": "DISABLED",
      "variants": {"a": "A", "b": "B"},
      "defaultVariant": "a",
      "targeting": {"fractional": [["a", 50], ["b", 50]]}
    },
    "rule": {
      "state": "ENABLED",
      "variants": {"on": "ON", "off": "OFF"},
      "defaultVariant": "off",
      "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", null]}
    }
  }
}"#;

/// One flagd v2 ResolveString; returns (variant, reason).
async fn resolve(
    c: &mut v2::service_client::ServiceClient<tonic::transport::Channel>,
    flag: &str,
    ctx: &[(&str, &str)],
) -> (String, String) {
    let r = c
        .resolve_string(v2::ResolveStringRequest {
            flag_key: flag.into(),
            context: Some(proto_ctx(ctx)),
        })
        .await
        .unwrap()
        .into_inner();
    (r.variant.unwrap_or_default(), r.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fractional_evaluations_are_exposures_with_flagd_attributes() {
    let (rx, endpoint) = Receiver::start().await;
    let s = serve_with(FLAGS, Some(&endpoint), PipelineConfig::default(), |o| {
        o.ofrep_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let url = match &s.running.grpc_addr {
        Bound::Tcp(a) => format!("http://{a}"),
        Bound::Unix(_) => unreachable!(),
    };
    let version = s.store.load().unwrap().version().to_owned();
    let mut flagd = v2::service_client::ServiceClient::connect(url.clone())
        .await
        .unwrap();

    // Exposures (the reason providers see stays flagd's TARGETING_MATCH).
    let u1 = resolve(&mut flagd, "split-flag", &[("targetingKey", "u-1")]).await;
    assert_eq!(u1.1, "TARGETING_MATCH");
    assert_eq!(
        resolve(&mut flagd, "split-flag", &[("targetingKey", "u-1")]).await,
        u1,
        "deterministic; the second is deduped"
    );
    let u2 = resolve(&mut flagd, "split-flag", &[("targetingKey", "u-2")]).await;
    let u3 = resolve(
        &mut flagd,
        "gated",
        &[("targetingKey", "u-3"), ("tier", "silver")],
    )
    .await;
    let u4 = resolve(&mut flagd, "looks-at", &[("targetingKey", "u-4")]).await;
    assert!(["on", "off"].contains(&u4.0.as_str()), "{u4:?}");

    // Not exposures: fractional never ran, did not bucket, or nothing was served.
    let gold = resolve(
        &mut flagd,
        "gated",
        &[("targetingKey", "u-9"), ("tier", "gold")],
    )
    .await;
    assert_eq!(gold, ("special".into(), "TARGETING_MATCH".into()));
    assert_eq!(
        resolve(&mut flagd, "static", &[("targetingKey", "u-9")]).await,
        ("on".into(), "STATIC".into())
    );
    assert_eq!(
        resolve(&mut flagd, "disabled", &[("targetingKey", "u-9")])
            .await
            .1,
        "DISABLED"
    );
    assert_eq!(
        resolve(
            &mut flagd,
            "rule",
            &[("targetingKey", "u-9"), ("tier", "gold")]
        )
        .await,
        ("on".into(), "TARGETING_MATCH".into())
    );
    // No targeting key: the shorthand has nothing to bucket (null), so the
    // comparison fails and "off" is a plain targeting result.
    assert_eq!(
        resolve(&mut flagd, "looks-at", &[("tier", "x")]).await,
        ("off".into(), "TARGETING_MATCH".into())
    );
    // Bulk evaluation is prefetching: flagd v1 ResolveAll and OFREP bulk.
    v1::service_client::ServiceClient::connect(url)
        .await
        .unwrap()
        .resolve_all(v1::ResolveAllRequest {
            context: Some(proto_ctx(&[("targetingKey", "u-bulk")])),
        })
        .await
        .unwrap();
    let addr = s.running.ofrep_addr.unwrap();
    let (status, _) = ofrep_post(
        addr,
        "/ofrep/v1/evaluate/flags",
        &[],
        r#"{"context": {"targetingKey": "u-bulk"}}"#,
    )
    .await;
    assert_eq!(status, 200);

    // OFREP single: u-1 again is a duplicate of the flagd exposure; u-5 is new.
    for unit in ["u-1", "u-5"] {
        let (status, body) = ofrep_post(
            addr,
            "/ofrep/v1/evaluate/flags/split-flag",
            &[],
            &format!(r#"{{"context": {{"targetingKey": "{unit}"}}}}"#),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if unit == "u-1" {
            assert_eq!(body["variant"], u1.0.as_str());
        }
    }
    let (_, u5) = ofrep_post(
        addr,
        "/ofrep/v1/evaluate/flags/split-flag",
        &[],
        r#"{"context": {"targetingKey": "u-5"}}"#,
    )
    .await;

    assert!(s.running.shutdown().await);
    let report = s.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    // u-1 x3 (2 deduped), u-2, u-3, u-4, u-5 x2 (1 deduped).
    assert_eq!(
        (
            report.stats.received,
            report.stats.deduped,
            report.stats.emitted
        ),
        (8, 3, 5),
        "{report:?}"
    );

    let mut got: Vec<BTreeMap<String, V>> =
        rx.logs().iter().map(|l| attrs(&l.attributes)).collect();
    got.sort_by_key(|a| a["feature_flag.context.id"].to_string());
    let want = [
        ("split-flag", "u-1", &*u1.0, "split", "flagd"),
        ("split-flag", "u-2", &*u2.0, "split", "flagd"),
        ("gated", "u-3", &*u3.0, "split", "flagd"),
        ("looks-at", "u-4", &*u4.0, "targeting_match", "flagd"),
        (
            "split-flag",
            "u-5",
            u5["variant"].as_str().unwrap(),
            "split",
            "ofrep",
        ),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (a, (key, unit, variant, reason, source)) in got.iter().zip(want) {
        let s = |v: &str| V::S(v.to_owned());
        assert_eq!(a["feature_flag.key"], s(key), "{a:?}");
        assert_eq!(a["feature_flag.context.id"], s(unit));
        assert_eq!(a["feature_flag.result.variant"], s(variant));
        assert_eq!(a["feature_flag.result.reason"], s(reason), "{a:?}");
        assert_eq!(a["feature_flag.version"], s(&version));
        assert_eq!(a["feature_flag.provider.name"], s("cohortd"));
        assert_eq!(a["feature_flag.set.id"], s("checkout-set"));
        assert_eq!(a["cohortd.unit_attribute"], s("targetingKey"));
        assert_eq!(a["cohortd.flag_format"], s("flagd"));
        assert_eq!(a["cohortd.source"], s(source));
        assert!(a.contains_key("cohortd.exposure.id"));
        // flagd flags have no epoch, salt or experiment status.
        for absent in [
            "cohortd.epoch",
            "cohortd.salt_fingerprint",
            "cohortd.experiment.status",
            "cohortd.sticky",
        ] {
            assert!(!a.contains_key(absent), "{absent} in {a:?}");
        }
    }
}
