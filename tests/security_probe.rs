//! The probe listener, through the real binary started with the arguments of
//! every rendered manifest (deploy/kubernetes/rendered/*.yaml; only ports,
//! socket paths and the config directory are changed to the test's own): health
//! answers on the probe address over gRPC and HTTP, and nothing else does —
//! Assign gets UNIMPLEMENTED, /metrics 404.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cohortd::transport::pb::assignment_client::AssignmentClient;
use cohortd::transport::pb::AssignRequest;
use serde::Deserialize;
use serde_json::Value;
use support::binary::free_port;
use support::binary::Killed;
use support::context::proto_ctx;
use support::http::http_get;
use support::runners::repo;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// (file, args) of the cohortd sidecar in every rendered manifest.
fn sidecars() -> Vec<(PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/kubernetes/rendered"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            for c in v
                .pointer("/spec/template/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if c["name"] == "cohortd" {
                    let args = c["args"].as_array().unwrap();
                    let args = args
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect();
                    out.push((f.clone(), args));
                }
            }
        }
    }
    assert!(out.len() >= 2, "a cohortd sidecar per overlay: {out:?}");
    out
}

/// The manifest's args with the test's ports, socket dir and config dir.
/// Returns them with the probe and (TCP) API addresses to dial.
fn localise(args: &[String], tmp: &Path) -> (Vec<String>, SocketAddr, Option<SocketAddr>) {
    let mut probe = None;
    let mut api = None;
    let out = args
        .iter()
        .map(|a| {
            let Some((flag, value)) = a.split_once('=') else {
                return a.clone();
            };
            if flag == "--config-dir" {
                return format!("{flag}={}", repo().join("examples/configs").display());
            }
            if let Some(path) = value.strip_prefix("unix:") {
                let name = Path::new(path).file_name().unwrap();
                return format!("{flag}=unix:{}", tmp.join(name).display());
            }
            let Ok(addr) = value.parse::<SocketAddr>() else {
                return a.clone();
            };
            let port = free_port().port();
            let dial = SocketAddr::from(([127, 0, 0, 1], port));
            match flag {
                "--probe-listen" => probe = Some(dial),
                "--listen" => api = Some(dial),
                _ => {}
            }
            format!("{flag}={}", SocketAddr::new(addr.ip(), port))
        })
        .collect::<Vec<String>>();
    // Listeners the manifest leaves at their defaults (fixed ports such as
    // OFREP's 8016) get free loopback ports too, so that another cohortd on
    // this machine cannot make the test fail to start.
    let mut out = out;
    for flag in [
        "--listen",
        "--admin-listen",
        "--ofrep-listen",
        "--sync-listen",
    ] {
        let set = out
            .iter()
            .any(|a| a.split_once('=').is_some_and(|(f, _)| f == flag));
        if !set {
            out.push(format!("{flag}=127.0.0.1:{}", free_port().port()));
        }
    }
    (out, probe.expect("the manifest sets --probe-listen"), api)
}

async fn channel(addr: SocketAddr) -> Option<Channel> {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()
}

fn assign() -> AssignRequest {
    AssignRequest {
        experiment: "payments-enabled".into(),
        context: Some(proto_ctx(&[("targetingKey", "u1")])),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_manifests_probe_listener_serves_health_and_nothing_else() {
    for (file, args) in sidecars() {
        let tmp = tempfile::tempdir().unwrap();
        let (argv, probe, api) = localise(&args, tmp.path());
        let log = tmp.path().join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_cohortd"))
            .args(&argv)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let _guard = Killed(child);
        let what = format!("{} {argv:?}", file.display());
        let logs = || std::fs::read_to_string(&log).unwrap_or_default();

        // gRPC health on the probe port turns SERVING once the config is loaded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let ch = loop {
            if let Some(ch) = channel(probe).await {
                let r = HealthClient::new(ch.clone())
                    .check(HealthCheckRequest::default())
                    .await;
                if r.is_ok_and(|r| r.into_inner().status == 1) {
                    break ch;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: no SERVING on the probe port\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // HTTP probes on the same port.
        assert_eq!(http_get(probe, "/healthz").await.0, 200, "{what}");
        let (code, body) = http_get(probe, "/readyz").await;
        assert_eq!(code, 200, "{what}: {body}");
        assert!(body.contains("\"ready\":true"), "{body}");
        assert_eq!(http_get(probe, "/metrics").await.0, 404, "{what}");
        // The API is not served there.
        let e = AssignmentClient::new(ch)
            .assign(assign())
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unimplemented, "{what}: {e:?}");
        // It is on the API listener (TCP manifests; the socket one is on a path).
        if let Some(api) = api {
            let ch = channel(api).await.expect("API listener");
            AssignmentClient::new(ch)
                .assign(assign())
                .await
                .unwrap_or_else(|e| panic!("{what}: Assign on the API listener: {e:?}"));
        }
    }
}
