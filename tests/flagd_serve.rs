//! The flagd services inside `cohortd serve`'s server: on the same port as
//! `cohortd.v1`, in health, under the same request limits, and ending their
//! event streams on graceful shutdown.

mod support;

use std::time::Duration;

use cohortd::transport::flagd::pb_v2 as v2;
use cohortd::transport::pb;
use support::context::proto_ctx;
use support::server::start;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

type Flagd = v2::service_client::ServiceClient<tonic::transport::Channel>;

#[tokio::test]
async fn flagd_and_cohortd_share_the_port_and_health() {
    let s = start(true, |_| {}).await;
    let ch = s.channel().await;
    let mut flagd = Flagd::new(ch.clone());
    let r = flagd
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "flag".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value, r.reason.as_str()), (Some(true), "STATIC"));
    let a = s
        .client()
        .await
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(proto_ctx(&[("targetingKey", "u1")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.variant, "on");
    for service in ["flagd.evaluation.v1.Service", "flagd.evaluation.v2.Service"] {
        let h = HealthClient::new(ch.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(h.status(), ServingStatus::Serving, "{service}");
    }
    // Evaluating an enrolled unit through flagd is an exposure with the flagd source.
    let snap = s.store.load().unwrap();
    let unit = (0..1000)
        .map(|i| format!("u{i}"))
        .find(|u| {
            snap.assign(
                "half",
                &proto_ctx(&[("targetingKey", u), ("country", "NL")]),
                cohortd::EvalOptions::default(),
            )
            .unwrap()
            .enrolled
        })
        .unwrap();
    let r = flagd
        .resolve_object(v2::ResolveObjectRequest {
            flag_key: "half".into(),
            context: Some(proto_ctx(&[("targetingKey", &unit), ("country", "NL")])),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.reason, "SPLIT");
    let seen = s.sink.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (
            seen[0].experiment.as_str(),
            seen[0].unit.as_str(),
            seen[0].source
        ),
        ("half", unit.as_str(), "flagd")
    );
}

#[tokio::test]
async fn flagd_requests_obey_the_server_limits() {
    let s = start(true, |o| o.limits.max_context_attributes = 2).await;
    let mut flagd = Flagd::new(s.channel().await);
    let e = flagd
        .resolve_boolean(v2::ResolveBooleanRequest {
            flag_key: "flag".into(),
            context: Some(proto_ctx(&[("a", "1"), ("b", "2"), ("c", "3")])),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().starts_with("INVALID_CONTEXT")
            && e.message().contains("--max-context-attributes"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn shutdown_ends_open_event_streams() {
    let s = start(true, |_| {}).await;
    let mut flagd = Flagd::new(s.channel().await);
    let mut stream = flagd
        .event_stream(v2::EventStreamRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.r#type, "provider_ready");
    let clean = tokio::time::timeout(Duration::from_secs(10), s.running.shutdown())
        .await
        .expect("shutdown finishes");
    assert!(
        clean,
        "shutdown was not clean: an event stream held it open"
    );
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends");
    assert!(!matches!(end, Ok(Some(_))), "{end:?}");
}
