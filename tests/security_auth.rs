//! Shared-secret auth (`--auth-token-file`) and the ingest switch and budget,
//! against an in-process server: calls without or with a wrong token get
//! UNAUTHENTICATED / 401, health never needs one, a rotated token file is
//! followed; `--ingest off` refuses LogExposures and Track with PERMISSION_DENIED and the
//! per-connection budget answers RESOURCE_EXHAUSTED beyond it.

mod support;

use std::time::Duration;

use cohortd::security::ingest::IngestPolicy;
use cohortd::security::SecurityOptions;
use cohortd::transport::pb::{AssignRequest, ExposureRecord, LogExposuresRequest};
use support::context::proto_ctx;
use support::http::{http_get, request};
use support::wait::eventually;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const TOKEN: &str = "first-token-0123456789abcdef";

fn assign() -> AssignRequest {
    AssignRequest {
        experiment: "flag".into(),
        context: Some(proto_ctx(&[("targetingKey", "u1")])),
        ..Default::default()
    }
}

fn with_header(name: &'static str, value: &str) -> tonic::Request<AssignRequest> {
    let mut r = tonic::Request::new(assign());
    r.metadata_mut().insert(name, value.parse().unwrap());
    r
}

/// GET with an optional `name: value` header, returning the status code.
async fn get_with(addr: std::net::SocketAddr, path: &str, header: Option<(&str, &str)>) -> u16 {
    let headers: Vec<_> = header.into_iter().collect();
    request(addr, "GET", path, &headers, b"").await.status
}

#[tokio::test]
async fn calls_need_the_token_and_health_does_not() {
    let tokens = tempfile::tempdir().unwrap();
    let file = tokens.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let srv = support::server::start(true, |o| {
        o.security = SecurityOptions {
            auth_token_file: Some(file.clone()),
            poll_interval: Duration::from_millis(100),
            ..SecurityOptions::default()
        };
    })
    .await;
    let mut c = srv.client().await;

    let none = c.assign(assign()).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    assert!(none.message().contains("Bearer"), "{}", none.message());
    let wrong = c
        .assign(with_header(
            "authorization",
            "Bearer not-the-token-0123456789",
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let basic = c
        .assign(with_header("authorization", &format!("Basic {TOKEN}")))
        .await
        .unwrap_err();
    assert_eq!(basic.code(), Code::Unauthenticated);
    c.assign(with_header("authorization", &format!("Bearer {TOKEN}")))
        .await
        .expect("bearer token accepted");
    c.assign(with_header("x-api-key", TOKEN))
        .await
        .expect("X-API-Key accepted");

    // Health: no token needed, on gRPC and HTTP.
    let h = HealthClient::new(srv.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .expect("health needs no token");
    assert_eq!(h.into_inner().status, 1);
    let admin = srv.running.admin_addr.unwrap();
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    assert_eq!(http_get(admin, "/readyz").await.0, 200);
    // Metrics do.
    assert_eq!(get_with(admin, "/metrics", None).await, 401);
    assert_eq!(
        get_with(
            admin,
            "/metrics",
            Some(("Authorization", "Bearer wrong-token-0123456789"))
        )
        .await,
        401
    );
    assert_eq!(
        get_with(
            admin,
            "/metrics",
            Some(("Authorization", &format!("Bearer {TOKEN}")))
        )
        .await,
        200
    );
    assert_eq!(
        get_with(admin, "/metrics", Some(("X-API-Key", TOKEN))).await,
        200
    );

    // Rotation: the file now holds a new token only.
    let next = "second-token-0123456789abcdef";
    std::fs::write(&file, format!("{next}\n")).unwrap();
    let rotated = eventually(Duration::from_secs(15), || {
        let mut c = c.clone();
        async move {
            c.assign(with_header("authorization", &format!("Bearer {next}")))
                .await
                .is_ok()
        }
    })
    .await;
    assert!(rotated, "the rotated token was not accepted");
    let old = c
        .assign(with_header("authorization", &format!("Bearer {TOKEN}")))
        .await
        .unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
    // An emptied file keeps the last good token.
    std::fs::write(&file, "\n").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.assign(with_header("authorization", &format!("Bearer {next}")))
        .await
        .expect("an empty token file must not lock everyone out");
}

#[tokio::test]
async fn a_missing_token_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let opts = cohortd::server::ServeOptions {
        listen: cohortd::server::Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: None,
        security: SecurityOptions {
            auth_token_file: Some(missing),
            ..SecurityOptions::default()
        },
        ..Default::default()
    };
    let err = cohortd::server::start(
        opts,
        cohortd::reload::Store::new(),
        std::sync::Arc::new(cohortd::exposure::NoopSink),
        cohortd::metrics::Metrics::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("auth token") && err.contains("nope"), "{err}");
}

fn records(n: usize) -> LogExposuresRequest {
    LogExposuresRequest {
        exposures: (0..n)
            .map(|i| ExposureRecord {
                experiment: "flag".into(),
                context: Some(proto_ctx(&[("targetingKey", &format!("u{i}"))])),
                variant: "on".into(),
                config_version: String::new(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn ingest_off_refuses_log_exposures_but_serves_the_rest() {
    let srv = support::server::start(true, |o| {
        o.security.ingest = IngestPolicy {
            enabled: false,
            ..IngestPolicy::default()
        };
    })
    .await;
    let mut c = srv.client().await;
    let e = c.log_exposures(records(1)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("--ingest off"));
    let e = c
        .track(cohortd::transport::pb::TrackRequest { events: vec![] })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "Track is ingest too: {e:?}"
    );
    c.assign(assign()).await.expect("assign still served");
}

#[tokio::test]
async fn each_connection_has_its_own_ingest_budget() {
    let srv = support::server::start(true, |o| {
        o.security.ingest = IngestPolicy {
            enabled: true,
            records_per_second: 1,
            burst: 5,
        };
    })
    .await;
    let mut c = srv.client().await;
    let first = c.log_exposures(records(4)).await;
    assert!(
        first
            .as_ref()
            .map_or_else(|e| e.code() != Code::ResourceExhausted, |_| true),
        "{first:?}"
    );
    let e = c.log_exposures(records(4)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("records/s"), "{}", e.message());
    // Track events draw on the same budget.
    let events = vec![cohortd::transport::pb::OutcomeEvent::default(); 5];
    let e = c
        .track(cohortd::transport::pb::TrackRequest { events })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // A second connection starts with a full bucket.
    let mut other = srv.client().await;
    let fresh = other.log_exposures(records(4)).await;
    assert!(
        fresh
            .as_ref()
            .map_or_else(|e| e.code() != Code::ResourceExhausted, |_| true),
        "{fresh:?}"
    );
}
