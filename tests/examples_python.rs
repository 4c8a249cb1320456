//! The Python examples in examples/python/ run against a live `cohortd serve` on
//! examples/configs and agree with the offline `cohortd assign`.
//!
//! The interpreter is $COHORTD_PYTHON, the venv that .ci/setup-python.sh builds
//! from tests/python/requirements.txt (grpcio, grpcio-tools, openfeature-sdk,
//! openfeature-provider-flagd). The server binds loopback ports only.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::binary::free_port;
use support::runners::{repo, require_python};

const BIN: &str = env!("CARGO_BIN_EXE_cohortd");

fn configs() -> PathBuf {
    repo().join("examples/configs")
}

/// `cohortd serve` as a child process, killed on drop.
struct Server {
    child: Child,
    admin_port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts cohortd with gRPC on `listen` and the admin port on a free loopback
    /// port, and waits (at most 30 s) until /readyz answers 200.
    fn start(listen: &str) -> Server {
        let admin_port = free_port().port();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config-dir")
            .arg(configs())
            .arg("--listen")
            .arg(listen)
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{admin_port}"))
            .args(["--ofrep-listen", "off", "--sync-listen", "off"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            .env("COHORTD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cohortd serve");
        let mut server = Server { child, admin_port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().expect("poll cohortd") {
                panic!("cohortd serve exited early with {status}");
            }
            if http_status(admin_port, "/readyz") == Some(200) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "cohortd not ready within 30 s (admin port {})",
                server.admin_port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The status code of GET `path` on the admin port, or None if it cannot connect.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn run_python(script: &str, args: &[String]) -> Output {
    let out = Command::new(require_python())
        .arg(repo().join("examples/python").join(script))
        .args(args)
        .env_remove("COHORTD_ADDR")
        .env_remove("FLAGD_HOST")
        .env_remove("FLAGD_PORT")
        .env_remove("FLAGD_RESOLVER")
        .output()
        .expect("run the Python example");
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Output lines starting with `tag`, as key=value maps. The scripts put the one
/// field that may contain spaces (`value` or `description`) last.
fn lines(out: &Output, tag: &str) -> Vec<HashMap<String, String>> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(tag)?.strip_prefix(' '))
        .map(|rest| {
            let trailing = [" value=", " description="]
                .iter()
                .filter_map(|k| rest.find(k).map(|i| (i, &k[1..k.len() - 1])))
                .min();
            let (head, last) = match trailing {
                Some((i, key)) => (&rest[..i], Some((key, &rest[i + key.len() + 2..]))),
                None => (rest, None),
            };
            let mut m: HashMap<String, String> = head
                .split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            if let Some((key, value)) = last {
                m.insert(key.to_owned(), value.to_owned());
            }
            m
        })
        .collect()
}

/// The offline answer: `cohortd assign` on the same config and context.
fn offline(args: &[&str], ctx: &Value) -> Value {
    let mut child = Command::new(BIN)
        .arg("assign")
        .arg("--config-dir")
        .arg(configs())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cohortd assign");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{ctx}").expect("write context");
    drop(stdin);
    let out = child.wait_with_output().expect("cohortd assign output");
    assert!(out.status.success(), "cohortd assign failed");
    serde_json::from_slice(&out.stdout).expect("cohortd assign prints JSON")
}

/// `split` -> `REASON_SPLIT`, as the proto enum names it.
fn reason_name(offline: &Value) -> String {
    format!(
        "REASON_{}",
        offline["reason"].as_str().expect("reason").to_uppercase()
    )
}

const EXPERIMENT: &str = "exp-checkout-flow-v3";

/// Runs the generated-stub client for `user` and checks every line against the
/// offline assignment.
fn check_generated_client(addr: &str, user: &str) {
    let ctx = json!({"userId": user, "targetingKey": user, "region": "US", "accountType": "free"});
    let out = run_python(
        "cohortd_client.py",
        &[
            format!("--addr={addr}"),
            format!("--experiment={EXPERIMENT}"),
            format!("--user={user}"),
            "region=US".into(),
            "accountType=free".into(),
        ],
    );

    let want = offline(&["--experiment", EXPERIMENT], &ctx);
    let assign = lines(&out, "assign");
    assert_eq!(assign.len(), 1, "one assign line expected");
    let a = &assign[0];
    assert_eq!(a["experiment"], EXPERIMENT);
    assert_eq!(
        a["variant"],
        want["variant"].as_str().unwrap(),
        "user {user}"
    );
    assert_eq!(a["enrolled"], want["enrolled"].to_string(), "user {user}");
    assert_eq!(a["reason"], reason_name(&want), "user {user}");
    assert_eq!(a["config_version"], want["version"].as_str().unwrap());
    assert_eq!(
        a["salt_fingerprint"],
        want["saltFingerprint"].as_str().unwrap()
    );

    let all_want = offline(&["--all"], &ctx);
    let all = lines(&out, "assign_all");
    let header = &all[0];
    assert_eq!(
        header["config_version"],
        all_want["version"].as_str().unwrap()
    );
    // `cohortd assign --all` prints {"assignments": {"<experiment>": {...}}}.
    let expected: Vec<(&str, &Value)> = all_want["assignments"]
        .as_object()
        .expect("assignments by experiment key")
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    assert_eq!(header["count"], expected.len().to_string());
    let served: HashMap<&str, &HashMap<String, String>> = all[1..]
        .iter()
        .map(|m| (m["experiment"].as_str(), m))
        .collect();
    assert_eq!(served.len(), expected.len());
    for (key, w) in expected {
        let got = served
            .get(key)
            .unwrap_or_else(|| panic!("AssignAll lacks {key}"));
        assert_eq!(got["variant"], w["variant"].as_str().unwrap(), "{key}");
        assert_eq!(got["reason"], reason_name(w), "{key}");
    }

    let explain = lines(&out, "explain");
    assert_eq!(explain.len(), 1);
    assert_eq!(explain[0]["variant"], a["variant"]);
    let steps = lines(&out, "explain_step");
    assert!(!steps.is_empty(), "Explain returned no steps");
    assert_eq!(explain[0]["steps"], steps.len().to_string());

    assert_eq!(lines(&out, "unknown_experiment")[0]["status"], "NOT_FOUND");
}

#[test]
fn generated_python_client_agrees_with_offline_assign_over_tcp() {
    let port = free_port().port();
    let _server = Server::start(&format!("127.0.0.1:{port}"));
    // Users chosen so that both enrolled and not-in-traffic units are covered.
    for user in ["u-1", "u-7"] {
        check_generated_client(&format!("127.0.0.1:{port}"), user);
    }
}

#[test]
fn generated_python_client_works_over_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock: &Path = &dir.path().join("cohortd.sock");
    let _server = Server::start(&format!("unix:{}", sock.display()));
    check_generated_client(&format!("unix:{}", sock.display()), "u-7");
}

#[test]
fn openfeature_example_resolves_through_the_flagd_protocol() {
    let port = free_port().port();
    let _server = Server::start(&format!("127.0.0.1:{port}"));
    let user = "u-7";
    let out = run_python(
        "openfeature_example.py",
        &[
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
            format!("--user={user}"),
            "region=US".into(),
            "accountType=free".into(),
        ],
    );
    let ctx = json!({"targetingKey": user, "userId": user, "region": "US", "accountType": "free"});
    let flags = lines(&out, "flag");
    let by_key: HashMap<&str, &HashMap<String, String>> =
        flags.iter().map(|m| (m["key"].as_str(), m)).collect();

    // Every example flag resolves to what the offline engine assigns.
    for key in [
        "payments-enabled",
        "upload-limit-mb",
        "homepage-banner",
        "exp-checkout-flow-v3",
    ] {
        let got = by_key
            .get(key)
            .unwrap_or_else(|| panic!("no output line for {key}"));
        let want = offline(&["--experiment", key], &ctx);
        assert_eq!(got["error"], "none", "{key}: {got:?}");
        assert_eq!(got["variant"], want["variant"].as_str().unwrap(), "{key}");
        let value: Value = serde_json::from_str(&got["value"]).expect("value is JSON");
        assert_eq!(value, want["value"], "{key}");
    }
    assert_eq!(by_key["payments-enabled"]["value"], "true");

    // An unknown flag returns the caller's default with FLAG_NOT_FOUND.
    let missing = by_key["no-such-flag"];
    assert_eq!(missing["value"], "true");
    assert_eq!(missing["error"], "FLAG_NOT_FOUND");
}

#[test]
fn track_example_attributes_the_outcome_and_records_a_retry_once() {
    let port = free_port().port();
    let server = Server::start(&format!("127.0.0.1:{port}"));
    let user = "u-7";
    let out = run_python(
        "track.py",
        &[
            format!("--addr=127.0.0.1:{port}"),
            format!("--user={user}"),
            "--event-id=py-event-1".into(),
            "region=US".into(),
            "accountType=free".into(),
        ],
    );
    // The experiments listing the metric, with the variant the offline engine
    // gives the unit where it is enrolled.
    let ctx = json!({"userId": user, "targetingKey": user, "region": "US", "accountType": "free"});
    let want = offline(&["--experiment", EXPERIMENT], &ctx);
    assert_eq!(want["enrolled"], json!(true), "{user} is an enrolled unit");
    let expected = format!("{EXPERIMENT}:{}", want["variant"].as_str().unwrap());
    let track = lines(&out, "track");
    assert_eq!(track.len(), 1, "one track line expected");
    assert_eq!(track[0]["event_id"], "py-event-1");
    assert_eq!(track[0]["duplicate"], "false");
    assert_eq!(track[0]["assignments"], expected);
    let retry = lines(&out, "track_retry");
    assert_eq!(retry[0]["duplicate"], "true", "a retry is recorded once");
    assert_eq!(
        lines(&out, "track_invalid")[0]["status"],
        "INVALID_ARGUMENT"
    );
    // Export is off, so the counters show what was recorded.
    let metrics = http_body(server.admin_port, "/metrics");
    assert!(metrics.contains("cohortd_outcomes_total 1\n"), "{metrics}");
    assert!(
        metrics.contains("cohortd_outcomes_deduped_total 1\n"),
        "{metrics}"
    );
}

/// The body of GET `path` on the admin port.
fn http_body(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}
