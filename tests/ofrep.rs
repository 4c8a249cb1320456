//! OFREP over HTTP against an in-process server: every status code and error
//! body, values of every type with their variants, reasons and metadata, bulk
//! evaluation with ETag / If-None-Match, exposures, limits, metrics, and the
//! listener switched off. Expected variants come from cohortd's engine.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cohortd::metrics::Metrics;
use cohortd::reload::Store;
use cohortd::server::{Listen, ServeOptions};
use cohortd::transport::limits::Limits;
use serde_json::{json, Value};
use support::binary::free_port;
use support::binary::Killed;
use support::flagd::{expectations, stopped_kill_switch, store};
use support::http::{request, Resp};
use support::server::start_ofrep;

/// An HTTP/1.1 response: status, lower-cased headers, body.
async fn post(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    request(addr, "POST", path, &[], body.to_string().as_bytes()).await
}

fn flag(key: &str) -> String {
    format!("/ofrep/v1/evaluate/flags/{key}")
}

const BULK: &str = "/ofrep/v1/evaluate/flags";

fn user(u: &str) -> Value {
    json!({"context": {"targetingKey": u}})
}

#[tokio::test]
async fn single_flags_have_their_values_variants_reasons_and_metadata() {
    let s = start_ofrep(store(), Limits::default()).await;
    let a = s.ofrep();
    let exp: Value = serde_json::from_str(&expectations()).unwrap();
    let version = s.store.load().unwrap().version().to_owned();

    // A kill switch needs no targeting key: STATIC.
    let r = post(a, &flag("kill-switch"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    let b = r.json();
    assert_eq!(b["key"], "kill-switch");
    assert_eq!(b["value"], true);
    assert_eq!(b["variant"], "on");
    assert_eq!(b["reason"], "STATIC");
    assert_eq!(b["metadata"]["configVersion"], version.as_str());
    assert_eq!(b["metadata"]["experimentStatus"], "running");
    // An empty body is an empty context too.
    let r = request(a, "POST", &flag("kill-switch"), &[], b"").await;
    assert_eq!(r.json()["value"], true);

    // Integers stay integers; the rollout's enrolled and outside users.
    let inside = exp["rollout_in"].as_str().unwrap();
    let outside = exp["rollout_out"].as_str().unwrap();
    let b = post(a, &flag("upload-limit-mb"), &user(inside))
        .await
        .json();
    assert_eq!(
        (&b["value"], &b["variant"], &b["reason"]),
        (&json!(250), &json!("new"), &json!("SPLIT"))
    );
    assert!(b["value"].is_i64());
    assert_eq!(b["metadata"]["enrolled"], true);
    let b = post(a, &flag("upload-limit-mb"), &user(outside))
        .await
        .json();
    assert_eq!(
        (&b["value"], &b["variant"], &b["reason"]),
        (&json!(100), &json!("old"), &json!("DEFAULT"))
    );

    // Strings, floats and objects: the engine's variant for each user.
    let values = json!({"en": "hello", "fr": "bonjour", "low": 0.9, "high": 1.25,
        "one-page": {"steps": 1, "express": true}, "multi-page": {"steps": 3, "express": false}});
    for key in ["greeting", "price-multiplier", "checkout-config"] {
        for (u, want) in exp[key].as_object().unwrap() {
            let b = post(a, &flag(key), &user(u)).await.json();
            assert_eq!(b["variant"], *want, "{key} {u}");
            assert_eq!(b["value"], values[want.as_str().unwrap()], "{key} {u}");
            assert_eq!(b["reason"], "SPLIT");
        }
    }

    // A winner is STATIC; a stopped experiment serves its default, DISABLED.
    let b = post(a, &flag("tour"), &json!({})).await.json();
    assert_eq!(
        (&b["value"], &b["reason"]),
        (&json!("short"), &json!("STATIC"))
    );
    let b = post(a, &flag("old-test"), &user("u1")).await.json();
    assert_eq!(
        (&b["value"], &b["reason"]),
        (&json!("control"), &json!("DISABLED"))
    );
    let b = post(
        a,
        &flag("beta-only"),
        &json!({"context": {"targetingKey": "u1", "plan": "free"}}),
    )
    .await
    .json();
    assert_eq!(
        (&b["value"], &b["reason"]),
        (&json!("off"), &json!("DEFAULT"))
    );

    // Enrolled single evaluations are exposures with source `ofrep`; the outside
    // user and the STATIC kill switch are not.
    let seen = s.sink.take();
    assert!(seen
        .iter()
        .any(|e| e.experiment == "upload-limit-mb" && e.unit == inside && e.variant == "new"));
    assert!(!seen.iter().any(|e| e.unit == outside));
    assert!(seen.iter().all(|e| e.source == "ofrep"), "{seen:?}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn errors_have_the_specs_status_codes_and_bodies() {
    let s = start_ofrep(store(), Limits::default()).await;
    let a = s.ofrep();
    let check = |r: &Resp, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        let b = r.json();
        assert_eq!(b["errorCode"], code, "{}", r.body);
        assert!(
            b["errorDetails"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            r.body
        );
        b
    };

    let b = check(
        &post(a, &flag("no-such-flag"), &user("u1")).await,
        404,
        "FLAG_NOT_FOUND",
    );
    assert_eq!(b["key"], "no-such-flag");
    assert_eq!(
        b["errorDetails"],
        "flag `no-such-flag` is not in the configuration"
    );
    check(
        &post(a, &flag("unfinished"), &user("u1")).await,
        404,
        "FLAG_NOT_FOUND",
    );
    let b = check(
        &post(a, &flag("greeting"), &json!({"context": {}})).await,
        400,
        "TARGETING_KEY_MISSING",
    );
    assert_eq!(b["key"], "greeting");
    let b = check(
        &request(a, "POST", &flag("greeting"), &[], b"{\"context\":").await,
        400,
        "PARSE_ERROR",
    );
    assert_eq!(b["key"], "greeting");
    check(
        &post(a, &flag("greeting"), &json!({"context": "u1"})).await,
        400,
        "INVALID_CONTEXT",
    );
    check(
        &post(a, &flag("greeting"), &json!([1])).await,
        400,
        "INVALID_CONTEXT",
    );
    let long = "k".repeat(300);
    check(
        &post(a, &flag(&long), &user("u1")).await,
        400,
        "INVALID_CONTEXT",
    );

    // The bulk endpoint: same codes, no key.
    let b = check(
        &request(a, "POST", BULK, &[], b"nope").await,
        400,
        "PARSE_ERROR",
    );
    assert!(b.get("key").is_none());
    check(
        &post(a, BULK, &json!({"context": 7})).await,
        400,
        "INVALID_CONTEXT",
    );

    // Only POST is served.
    assert_eq!(
        request(a, "GET", &flag("greeting"), &[], b"").await.status,
        405
    );
    assert_eq!(
        request(a, "POST", "/ofrep/v2/nothing", &[], b"")
            .await
            .status,
        404
    );
    assert!(s.sink.take().is_empty());
    s.running.shutdown().await;
}

#[tokio::test]
async fn limits_apply_as_on_grpc() {
    let limits = Limits {
        max_message_bytes: 200,
        max_context_attributes: 2,
        max_string_value_bytes: 8,
        ..Limits::default()
    };
    let s = start_ofrep(store(), limits).await;
    let a = s.ofrep();
    let big = json!({"context": {"targetingKey": "u1", "pad": "x".repeat(300)}});
    for path in [flag("greeting"), BULK.to_owned()] {
        let r = post(a, &path, &big).await;
        assert_eq!(r.status, 413, "{}", r.body);
        assert!(r.json()["errorDetails"]
            .as_str()
            .unwrap()
            .contains("--max-message-bytes"));
        let r = post(
            a,
            &path,
            &json!({"context": {"targetingKey": "u1", "a": 1, "b": 2}}),
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["errorCode"], "INVALID_CONTEXT");
        assert!(r.json()["errorDetails"]
            .as_str()
            .unwrap()
            .contains("--max-context-attributes"));
        let r = post(
            a,
            &path,
            &json!({"context": {"targetingKey": "a-long-unit-id"}}),
        )
        .await;
        assert_eq!(r.json()["errorCode"], "INVALID_CONTEXT");
        assert!(r.json()["errorDetails"]
            .as_str()
            .unwrap()
            .contains("--max-string-value-bytes"));
    }
    // Within the limits all is well.
    assert_eq!(post(a, &flag("greeting"), &user("u1")).await.status, 200);
    s.running.shutdown().await;
}

#[tokio::test]
async fn not_ready_is_503_until_a_config_is_loaded() {
    let s = start_ofrep(Store::new(), Limits::default()).await;
    let a = s.ofrep();
    for path in [flag("greeting"), BULK.to_owned()] {
        let r = post(a, &path, &user("u1")).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.json()["errorCode"], "PROVIDER_NOT_READY");
    }
    s.store
        .install(support::compile::compile_yaml(support::flagd::CONFIG));
    assert_eq!(post(a, &flag("greeting"), &user("u1")).await.status, 200);
    s.running.shutdown().await;
}

#[tokio::test]
async fn bulk_evaluates_every_served_flag_with_etags() {
    let s = start_ofrep(store(), Limits::default()).await;
    let a = s.ofrep();
    let exp: Value = serde_json::from_str(&expectations()).unwrap();

    let r = post(a, BULK, &user("user-1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tag = r.headers["etag"].clone();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    let b = r.json();
    let flags = b["flags"].as_array().unwrap();
    let by_key: HashMap<&str, &Value> = flags
        .iter()
        .map(|f| (f["key"].as_str().unwrap(), f))
        .collect();
    // Every served flag (the draft is not served), each as a single evaluation.
    let mut keys: Vec<_> = by_key.keys().copied().collect();
    keys.sort_unstable();
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
    assert_eq!(by_key["greeting"]["variant"], exp["greeting"]["user-1"]);
    assert_eq!(by_key["old-test"]["reason"], "DISABLED");
    assert_eq!(by_key["kill-switch"]["value"], true);
    let single = post(a, &flag("checkout-config"), &user("user-1"))
        .await
        .json();
    assert_eq!(*by_key["checkout-config"], single);
    // (That single evaluation was an exposure; bulk ones below are not.)
    assert_eq!(s.sink.take().len(), 1);
    assert_eq!(
        b["metadata"]["configVersion"],
        s.store.load().unwrap().version()
    );

    // Same context, same config: 304 with the tag and no body.
    let r = request(
        a,
        "POST",
        BULK,
        &[("If-None-Match", &tag)],
        user("user-1").to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.headers["etag"], tag);
    assert!(r.body.is_empty());
    // A list, or a weak tag, matches as well; another tag does not.
    let list = format!("\"other\", W/{tag}");
    let r = request(
        a,
        "POST",
        BULK,
        &[("If-None-Match", &list)],
        user("user-1").to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 304);
    let r = request(
        a,
        "POST",
        BULK,
        &[("If-None-Match", "\"other\"")],
        user("user-1").to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);

    // A context whose answers differ gets another tag and a 200.
    let other = exp["greeting"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, v)| **v != exp["greeting"]["user-1"])
        .map(|(u, _)| u.clone())
        .expect("the engine splits 8 users over 2 variants");
    let r = request(
        a,
        "POST",
        BULK,
        &[("If-None-Match", &tag)],
        user(&other).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_ne!(r.headers["etag"], tag);

    // Without a targeting key, flags that need one are listed as errors.
    let b = post(a, BULK, &json!({})).await.json();
    let greeting = b["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "greeting")
        .unwrap();
    assert_eq!(greeting["errorCode"], "TARGETING_KEY_MISSING");
    assert!(greeting.get("value").is_none());

    // A reload: the old tag no longer matches, and the new body shows the change.
    s.store.install(stopped_kill_switch()).expect("a change");
    let r = request(
        a,
        "POST",
        BULK,
        &[("If-None-Match", &tag)],
        user("user-1").to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_ne!(r.headers["etag"], tag);
    let kill = r.json()["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "kill-switch")
        .cloned()
        .unwrap();
    assert_eq!(
        (&kill["value"], &kill["reason"]),
        (&json!(false), &json!("DISABLED"))
    );
    // The trailing-slash form flagd also accepts.
    assert_eq!(
        post(a, "/ofrep/v1/evaluate/flags/", &user("user-1"))
            .await
            .status,
        200
    );

    // Bulk evaluation is prefetching: no exposures.
    assert!(s.sink.take().is_empty());
    s.running.shutdown().await;
}

#[tokio::test]
async fn requests_are_counted_per_route_and_status() {
    let s = start_ofrep(store(), Limits::default()).await;
    let a = s.ofrep();
    post(a, &flag("greeting"), &user("u1")).await;
    post(a, &flag("nope"), &user("u1")).await;
    post(a, BULK, &user("u1")).await;
    let admin = s.running.admin_addr.unwrap();
    let r = request(admin, "GET", "/metrics", &[], b"").await;
    let m = r.body;
    for line in [
        r#"cohortd_ofrep_requests_total{route="/ofrep/v1/evaluate/flags/{key}",status="200"} 1"#,
        r#"cohortd_ofrep_requests_total{route="/ofrep/v1/evaluate/flags/{key}",status="404"} 1"#,
        r#"cohortd_ofrep_requests_total{route="/ofrep/v1/evaluate/flags",status="200"} 1"#,
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_listener_can_be_switched_off() {
    let opts = ServeOptions {
        listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: None,
        ofrep_listen: None,
        ..ServeOptions::default()
    };
    let running = cohortd::server::start(
        opts,
        store(),
        Arc::new(cohortd::exposure::NoopSink),
        Metrics::new(),
    )
    .await
    .unwrap();
    assert_eq!(running.ofrep_addr, None);
    running.shutdown().await;
}

/// Starts `cohortd serve` on a free gRPC port (returned) with `--ofrep-listen ofrep`.
fn spawn_binary(dir: &std::path::Path, ofrep: &str) -> (Killed, u16) {
    let grpc = free_port().port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("serve")
        .arg("--config-dir")
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{grpc}")])
        .args([
            "--admin-listen",
            "off",
            "--ofrep-listen",
            ofrep,
            "--sync-listen",
            "off",
        ])
        .args(["--debounce-ms", "20", "--poll-interval", "200ms"])
        .env("COHORTD_LOG", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (Killed(child), grpc)
}

/// Polls (bounded) until `f` holds.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cohortd_serve_serves_ofrep_and_follows_config_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.yaml");
    std::fs::write(&file, support::flagd::CONFIG).unwrap();
    let port = free_port().port();
    let _bin = spawn_binary(dir.path(), &format!("127.0.0.1:{port}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let kill_switch = async || {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return None;
        }
        Some(post(addr, &flag("kill-switch"), &json!({})).await.json())
    };
    eventually("OFREP answers", async || kill_switch().await.is_some()).await;
    assert_eq!(kill_switch().await.unwrap()["value"], true);

    // Rewrite the file: the reload is served over OFREP.
    let stopped = support::flagd::CONFIG.replace(
        "  - key: kill-switch\n    status: running",
        "  - key: kill-switch\n    status: stopped",
    );
    std::fs::write(&file, stopped).unwrap();
    eventually("the stopped kill switch is served", async || {
        kill_switch()
            .await
            .is_some_and(|b| b["value"] == false && b["reason"] == "DISABLED")
    })
    .await;
}

#[tokio::test]
async fn cohortd_serve_ofrep_listen_off_opens_no_port() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flags.yaml"), support::flagd::CONFIG).unwrap();
    // Hold flagd's OFREP port (if something else holds it, so much the better).
    let _held = std::net::TcpListener::bind("127.0.0.1:8016");
    // Asked to listen there, serve refuses to start and says why...
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .args(["serve", "--config-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{}", free_port().port())])
        .args(["--admin-listen", "off", "--ofrep-listen", "127.0.0.1:8016"])
        .env("COHORTD_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:8016 (OFREP)"), "{err}");
    // ...and with `off` it binds nothing there and serves.
    let (mut bin, grpc) = spawn_binary(dir.path(), "off");
    let grpc: SocketAddr = ([127, 0, 0, 1], grpc).into();
    eventually("gRPC answers", async || {
        tokio::net::TcpStream::connect(grpc).await.is_ok()
    })
    .await;
    assert!(bin.0.try_wait().unwrap().is_none(), "serve exited");
    // A bad value is refused with a clear message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .args(["serve", "--config-dir"])
        .arg(dir.path())
        .args(["--ofrep-listen", "localhost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`localhost` is not IP:PORT or `off`"), "{err}");
}
