//! End-to-end tests of the serving infrastructure: gRPC health transitions,
//! reflection (v1 and v1alpha), the Unix socket listener, Watch resync after a
//! burst of reloads, and the management HTTP port (/healthz, /readyz, /metrics).

mod support;

use std::time::Duration;

use cohortd::server::{Bound, Listen};
use cohortd::transport::pb;
use support::context::proto_ctx;
use support::server::start;
use support::unix::unix_client;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn health(ch: &tonic::transport::Channel, service: &str) -> ServingStatus {
    let r = HealthClient::new(ch.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    r.status()
}

#[tokio::test]
async fn health_is_not_serving_until_a_config_loads() {
    let s = start(false, |_| {}).await;
    let ch = s.channel().await;
    assert_eq!(health(&ch, "").await, ServingStatus::NotServing);
    assert_eq!(
        health(&ch, "cohortd.v1.Assignment").await,
        ServingStatus::NotServing
    );
    let mut watch = HealthClient::new(ch.clone())
        .watch(HealthCheckRequest {
            service: "cohortd.v1.Assignment".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );

    // An invalid config keeps it NOT_SERVING.
    std::fs::write(
        s.dir.path().join("broken.yaml"),
        "experiments: [{key: z, status: running, variants: []}]",
    )
    .unwrap();
    let out = cohortd::reload::reload_now(s.dir.path(), &s.store);
    assert!(matches!(out, cohortd::reload::ReloadOutcome::Rejected(_)));
    assert_eq!(health(&ch, "").await, ServingStatus::NotServing);
    let (code, body) = s.http_get("/readyz").await;
    assert_eq!(code, 503);
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["ready"], false);
    assert!(
        detail["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("broken.yaml"),
        "{body}"
    );

    std::fs::remove_file(s.dir.path().join("broken.yaml")).unwrap();
    let out = cohortd::reload::reload_now(s.dir.path(), &s.store);
    assert!(matches!(out, cohortd::reload::ReloadOutcome::Applied(_)));
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::Serving);
    assert_eq!(health(&ch, "").await, ServingStatus::Serving);
    let (code, body) = s.http_get("/readyz").await;
    assert_eq!(code, 200, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["version"], s.store.load().unwrap().version());
    assert_eq!(detail["experiments"], 5);
    assert_eq!(detail["served_experiments"], 4);
    assert!(detail["last_reload_error"].is_null());

    // Shutdown flips health back before the listener closes.
    let ch2 = ch.clone();
    let health_watch = tokio::spawn(async move {
        let mut w = HealthClient::new(ch2)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut seen = Vec::new();
        while let Ok(Some(m)) = w.message().await {
            seen.push(m.status());
            if m.status() == ServingStatus::NotServing {
                break;
            }
        }
        seen
    });
    // Wait until the watcher has its first (SERVING) message in flight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let running = s.running;
    tokio::spawn(async move { running.shutdown().await });
    let seen = tokio::time::timeout(Duration::from_secs(10), health_watch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.first(), Some(&ServingStatus::Serving));
    assert_eq!(seen.last(), Some(&ServingStatus::NotServing), "{seen:?}");
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    let s = start(true, |_| {}).await;
    let ch = s.channel().await;

    use tonic_reflection::pb::v1 as r1;
    let req = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let describe = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            r1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "grpc.health.v1.Health".into(),
            ),
        ),
    };
    let mut stream = r1::server_reflection_client::ServerReflectionClient::new(ch.clone())
        .server_reflection_info(tokio_stream::iter([req, describe]))
        .await
        .unwrap()
        .into_inner();
    let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "cohortd.v1.Assignment",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("bench")),
        "only served services are listed: {names:?}"
    );
    let Some(r1::server_reflection_response::MessageResponse::FileDescriptorResponse(fd)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected the health descriptor (so grpcurl can describe health)")
    };
    assert!(!fd.file_descriptor_proto.is_empty());

    use tonic_reflection::pb::v1alpha as ra;
    let req = ra::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(ra::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = ra::server_reflection_client::ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let Some(ra::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    assert!(list
        .service
        .iter()
        .any(|s| s.name == "cohortd.v1.Assignment"));
}

#[tokio::test]
async fn serves_on_a_unix_socket_and_replaces_a_stale_one() {
    let sock_dir = tempfile::tempdir().unwrap();
    let path = sock_dir.path().join("cohortd.sock");
    // A stale socket file, as a killed server leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let p = path.clone();
    let s = start(true, move |o| {
        o.listen = Listen::Unix(p);
        o.admin_listen = None;
    })
    .await;
    assert_eq!(s.running.grpc_addr, Bound::Unix(path.clone()));
    let mut c = unix_client(path.clone()).await;
    let r = c
        .assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(proto_ctx(&[("targetingKey", "u1")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.variant, "on");

    // A live socket is not stolen.
    let p = path.clone();
    let err = cohortd::server::start(
        cohortd::server::ServeOptions {
            listen: Listen::Unix(p),
            admin_listen: None,
            ..Default::default()
        },
        s.store.clone(),
        std::sync::Arc::new(cohortd::exposure::NoopSink),
        cohortd::metrics::Metrics::new(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("another server is listening"),
        "{err}"
    );

    // Nor is a regular file.
    let file = sock_dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let err = cohortd::server::start(
        cohortd::server::ServeOptions {
            listen: Listen::Unix(file.clone()),
            admin_listen: None,
            ..Default::default()
        },
        s.store.clone(),
        std::sync::Arc::new(cohortd::exposure::NoopSink),
        cohortd::metrics::Metrics::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    assert!(s.running.shutdown().await);
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn watch_resyncs_after_falling_behind() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    let mut stream = c.watch(pb::WatchRequest {}).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().unwrap().initial);
    let file = s.dir.path().join("experiments.yaml");
    // More reloads than the broadcast buffer (64) holds, with no await in
    // between: on this runtime the stream task cannot keep up and lags.
    for i in 0..100 {
        let text = support::server::CONFIG.replace(
            "trafficAllocation: 0.5",
            &format!("trafficAllocation: 0.{:03}", 100 + i),
        );
        std::fs::write(&file, text).unwrap();
        assert!(matches!(
            cohortd::reload::reload_now(s.dir.path(), &s.store),
            cohortd::reload::ReloadOutcome::Applied(_)
        ));
    }
    let last = s.store.load().unwrap().version().to_owned();
    let mut resynced = false;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        resynced |= m.initial;
        if m.config_version == last {
            break;
        }
    }
    assert!(resynced, "a lagged stream resends the version in force");
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code() {
    let s = start(true, |_| {}).await;
    let mut c = s.client().await;
    for _ in 0..3 {
        c.assign(pb::AssignRequest {
            experiment: "flag".into(),
            context: Some(proto_ctx(&[("targetingKey", "u1")])),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let e = c
        .assign(pb::AssignRequest {
            experiment: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    c.assign_all(pb::AssignAllRequest::default()).await.unwrap();

    let (code, body) = s.http_get("/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, text) = s.http_get("/metrics").await;
    assert_eq!(code, 200);
    let version = s.store.load().unwrap().version().to_owned();
    for want in [
        r#"cohortd_grpc_requests_total{service="cohortd.v1.Assignment",method="Assign",code="OK"} 3"#,
        r#"cohortd_grpc_requests_total{service="cohortd.v1.Assignment",method="Assign",code="NOT_FOUND"} 1"#,
        r#"cohortd_grpc_requests_total{service="cohortd.v1.Assignment",method="AssignAll",code="OK"} 1"#,
        r#"cohortd_grpc_request_duration_seconds_count{service="cohortd.v1.Assignment",method="Assign"} 4"#,
        r#"cohortd_config_reloads_total{outcome="applied"} 1"#,
        r#"cohortd_config_reloads_total{outcome="rejected"} 0"#,
        r#"cohortd_experiments_loaded{served="true"} 4"#,
        r#"cohortd_experiments_loaded{served="false"} 1"#,
        "cohortd_config_loaded 1",
        "cohortd_seconds_since_last_successful_reload ",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    assert!(
        text.contains(&format!(r#"cohortd_config_info{{version="{version}"}} 1"#)),
        "{text}"
    );
    assert!(
        !text.contains(r#"code="INTERNAL""#),
        "only codes seen are listed"
    );

    // A path that names no service is counted, under a fixed label.
    let ch = s.channel().await;
    let mut raw = tonic::client::Grpc::new(ch);
    raw.ready().await.unwrap();
    let e = raw
        .unary::<pb::WatchRequest, pb::WatchEvent, _>(
            tonic::Request::new(pb::WatchRequest {}),
            http::uri::PathAndQuery::from_static("/evil.Service/Anything"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    let (_, text) = s.http_get("/metrics").await;
    assert!(
        text.contains(r#"cohortd_grpc_requests_total{service="unknown",method="unknown",code="UNIMPLEMENTED"} 1"#),
        "{text}"
    );
    assert!(!text.contains("evil"));
}
