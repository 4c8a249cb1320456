//! TLS and mutual TLS on listeners that leave the pod, with certificates made
//! in the test and a real TLS client (tokio-rustls under a tonic channel):
//! TLS and mTLS calls work, a client without a certificate is refused under
//! mTLS, a certificate rotated the kubelet's way (`..data` swap) is served
//! without a restart, a broken rotation keeps the old one and `/readyz` says so,
//! and a broken certificate at start is a clear error.

mod support;

use std::time::Duration;

use cohortd::security::SecurityOptions;
use cohortd::server::Listen;
use support::tls::{
    der, https_get, serve_tls, served_cert, tls_channel, tls_files, write_secret, Ca, Pair,
};
use support::wait::eventually;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn health(ch: tonic::transport::Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(ch)
        .check(HealthCheckRequest::default())
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn tls_serves_grpc_and_admin_and_follows_rotation() {
    let ca = Ca::new("test ca");
    let (first, second) = (ca.leaf("first"), ca.leaf("second"));
    let secret = tempfile::tempdir().unwrap();
    write_secret(secret.path(), &first, &ca.pem);
    let (_srv, grpc, admin) = serve_tls(tls_files(secret.path(), false)).await;

    let ch = tls_channel(grpc, &ca.pem, None).await.expect("TLS connect");
    assert_eq!(health(ch).await.unwrap(), ServingStatus::Serving as i32);
    let (code, body) = https_get(admin, &ca.pem, None, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"last_error\":null"), "{body}");
    // Plain HTTP/2 on a TLS listener gets nowhere.
    let plain = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(
            health(ch).await.is_err(),
            "plaintext call answered on a TLS listener"
        );
    }

    assert_eq!(served_cert(grpc, &ca.pem, None).await, der(&first.cert));
    write_secret(secret.path(), &second, &ca.pem);
    let want = der(&second.cert);
    assert!(
        eventually(Duration::from_secs(15), || async {
            served_cert(grpc, &ca.pem, None).await == want
        })
        .await,
        "the rotated certificate was not served"
    );
    // The admin listener follows the same rotation.
    let s = support::tls::tls_connect(admin, &ca.pem, None, b"http/1.1")
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.peer_certificates().unwrap()[0].to_vec(), want);

    // A broken rotation: the certificate is garbage. The previous one stays.
    let broken = Pair {
        cert: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into(),
        key: second.key.clone(),
    };
    write_secret(secret.path(), &broken, &ca.pem);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (said, last) = loop {
        let (code, body) = https_get(admin, &ca.pem, None, "/readyz").await;
        let ok = code == 200 && body.contains("tls.crt") && body.contains("\"failed_reloads\":1");
        if ok || tokio::time::Instant::now() > deadline {
            break (ok, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(said, "/readyz does not report the refused rotation: {last}");
    assert_eq!(served_cert(grpc, &ca.pem, None).await, want);
    let ch = tls_channel(grpc, &ca.pem, None).await.unwrap();
    assert_eq!(health(ch).await.unwrap(), ServingStatus::Serving as i32);

    // A key that does not match the certificate is refused too.
    let mismatched = Pair {
        cert: first.cert.clone(),
        key: second.key.clone(),
    };
    write_secret(secret.path(), &mismatched, &ca.pem);
    assert!(
        eventually(Duration::from_secs(15), || async {
            https_get(admin, &ca.pem, None, "/readyz")
                .await
                .1
                .contains("\"failed_reloads\":2")
        })
        .await
    );
    assert_eq!(served_cert(grpc, &ca.pem, None).await, want);
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let ca = Ca::new("test ca");
    let server = ca.leaf("server");
    let client = ca.leaf("client");
    let stranger = Ca::new("other ca").leaf("stranger");
    let secret = tempfile::tempdir().unwrap();
    write_secret(secret.path(), &server, &ca.pem);
    let (_srv, grpc, admin) = serve_tls(tls_files(secret.path(), true)).await;

    let ch = tls_channel(grpc, &ca.pem, Some(client.clone()))
        .await
        .expect("mTLS connect");
    assert_eq!(health(ch).await.unwrap(), ServingStatus::Serving as i32);
    let (code, _) = https_get(admin, &ca.pem, Some(&client), "/healthz").await;
    assert_eq!(code, 200);

    for (who, cert) in [
        ("no certificate", None),
        ("another CA's certificate", Some(stranger)),
    ] {
        // TLS 1.3 reports the refusal on the first read, so either step may fail.
        let refused = match tls_channel(grpc, &ca.pem, cert.clone()).await {
            Err(_) => true,
            Ok(ch) => health(ch).await.is_err(),
        };
        assert!(refused, "a client with {who} was served under mTLS");
        let (code, _) = https_get(admin, &ca.pem, cert.as_ref(), "/healthz").await;
        assert_eq!(code, 0, "admin answered a client with {who}");
    }
}

#[tokio::test]
async fn an_unusable_certificate_stops_the_start_with_the_file_named() {
    let ca = Ca::new("test ca");
    let (a, b) = (ca.leaf("a"), ca.leaf("b"));
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("missing", None, "cannot open"),
        (
            "garbage",
            Some(Pair {
                cert: "hello".into(),
                key: a.key.clone(),
            }),
            "no CERTIFICATE",
        ),
        (
            "mismatch",
            Some(Pair {
                cert: a.cert.clone(),
                key: b.key.clone(),
            }),
            "cannot be used with",
        ),
    ];
    for (name, pair, want) in cases {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        if let Some(p) = &pair {
            write_secret(&sub, p, &ca.pem);
        }
        let opts = cohortd::server::ServeOptions {
            listen: Listen::Tcp("0.0.0.0:0".parse().unwrap()),
            admin_listen: None,
            security: SecurityOptions {
                tls: Some(tls_files(&sub, false)),
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
        .expect_err(name)
        .to_string();
        assert!(err.contains(want) && err.contains("tls."), "{name}: {err}");
    }
}

#[tokio::test]
async fn loopback_listeners_stay_plaintext_with_tls_configured() {
    let ca = Ca::new("test ca");
    let secret = tempfile::tempdir().unwrap();
    write_secret(secret.path(), &ca.leaf("server"), &ca.pem);
    let srv = support::server::start(true, |o| {
        o.security.tls = Some(tls_files(secret.path(), false));
    })
    .await;
    let ch = srv.channel().await;
    assert_eq!(health(ch).await.unwrap(), ServingStatus::Serving as i32);
}
