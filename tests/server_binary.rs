//! The real `cohortd serve` binary: JSON logs, and graceful shutdown on SIGTERM
//! with a call in flight (it completes, the process exits 0, the socket is gone).

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cohortd::transport::pb;
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use support::unix::unix_client;

fn spawn(config: &Path, sock: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("serve")
        .arg("--config-dir")
        .arg(config)
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .args(["--admin-listen", "off", "--log-format", "json"])
        .args(["--ofrep-listen", "off", "--sync-listen", "off"])
        .args(extra)
        .env("COHORTD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until the socket accepts connections.
async fn wait_for(sock: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::UnixStream::connect(sock).await.is_ok() {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "server exited early");
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the child to exit, then returns its status and everything it wrote
/// to stderr (its logs).
fn wait_exit_with_logs(child: &mut Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let st = wait_exit(child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (st, err)
}

#[tokio::test]
async fn sigterm_lets_the_in_flight_call_finish_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("c.sock");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    // Every call is held for 1.5 s (test hook), so SIGTERM lands mid-call.
    let mut child = spawn(&examples, &sock, &["--debug-delay", "1500ms"]);
    wait_for(&sock, &mut child).await;
    let mut c = unix_client(sock.clone()).await;
    let mut ctx = Struct::default();
    ctx.fields.insert(
        "targetingKey".into(),
        Value {
            kind: Some(Kind::StringValue("u1".into())),
        },
    );
    let call = tokio::spawn(async move {
        c.assign(pb::AssignRequest {
            experiment: "payments-enabled".into(),
            context: Some(ctx),
            ..Default::default()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!call.is_finished(), "the call must still be in flight");
    sigterm(&child);
    let r = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .unwrap()
        .unwrap()
        .expect("the in-flight call completes");
    assert_eq!(r.into_inner().variant, "on");
    let status = tokio::task::spawn_blocking(move || wait_exit_with_logs(&mut child))
        .await
        .unwrap();
    let (st, logs) = status;
    assert_eq!(st.code(), Some(0), "{logs}");
    assert!(!sock.exists(), "socket removed on exit");
    // JSON logs: one object per line, with the lifecycle messages.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let msgs: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for want in ["config loaded", "serving", "shutting down", "stopped"] {
        assert!(msgs.contains(&want), "{msgs:?}");
    }
    let down = lines
        .iter()
        .find(|l| l["message"] == "shutting down")
        .unwrap();
    assert_eq!(down["signal"], "SIGTERM");
    let stopped = lines.iter().find(|l| l["message"] == "stopped").unwrap();
    assert_eq!(stopped["clean"], true);
}

#[tokio::test]
async fn an_invalid_config_at_startup_serves_unavailable_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("bad.yaml"),
        "experiments: [{key: z, variants: []}]",
    )
    .unwrap();
    let sock = tmp.path().join("c.sock");
    let mut child = spawn(&cfg, &sock, &[]);
    wait_for(&sock, &mut child).await;
    let mut c = unix_client(sock.clone()).await;
    let e = c
        .assign(pb::AssignRequest {
            experiment: "z".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(e.message().contains("bad.yaml"), "{e:?}");
    sigterm(&child);
    let st = tokio::task::spawn_blocking(move || wait_exit(&mut child))
        .await
        .unwrap();
    assert_eq!(st.code(), Some(0));
}

#[tokio::test]
async fn calls_longer_than_the_grace_period_are_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("c.sock");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut child = spawn(
        &examples,
        &sock,
        &["--debug-delay", "20s", "--shutdown-grace", "300ms"],
    );
    wait_for(&sock, &mut child).await;
    let mut c = unix_client(sock.clone()).await;
    let call = tokio::spawn(async move { c.assign_all(pb::AssignAllRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&child);
    let (st, logs) = tokio::task::spawn_blocking(move || wait_exit_with_logs(&mut child))
        .await
        .unwrap();
    assert_eq!(st.code(), Some(0), "{logs}");
    assert!(logs.contains("grace period elapsed"), "{logs}");
    let r = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap()
        .unwrap();
    assert!(r.is_err(), "the cut-off call fails instead of hanging");
}

#[tokio::test]
async fn the_binary_watches_its_config_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("a.yaml"),
        "experiments: [{key: a, status: running, variants: [x]}]",
    )
    .unwrap();
    let sock = tmp.path().join("c.sock");
    let mut child = spawn(&cfg, &sock, &["--debounce-ms", "20"]);
    wait_for(&sock, &mut child).await;
    let mut c = unix_client(sock.clone()).await;
    let mut watch = c.watch(pb::WatchRequest {}).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().unwrap();
    let e = c
        .assign(pb::AssignRequest {
            experiment: "b".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    // Editors save by writing a temporary file and renaming it over the target.
    std::fs::write(
        cfg.join(".b.yaml.tmp"),
        "experiments: [{key: b, status: running, variants: [y]}]",
    )
    .unwrap();
    std::fs::rename(cfg.join(".b.yaml.tmp"), cfg.join("b.yaml")).unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let ev = watch.message().await.unwrap().unwrap();
            if ev.added.contains(&"b".to_string()) {
                return ev;
            }
        }
    })
    .await
    .expect("the reload is announced");
    assert_ne!(ev.config_version, first.config_version);
    let r = c
        .assign(pb::AssignRequest {
            experiment: "b".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.config_version, ev.config_version);
    sigterm(&child);
    let st = tokio::task::spawn_blocking(move || wait_exit(&mut child))
        .await
        .unwrap();
    assert_eq!(st.code(), Some(0));
}
