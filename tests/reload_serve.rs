//! The real `cohortd serve` binary follows a ConfigMap volume: kubelet-style
//! updates are served, an invalid one is refused (logged with file, experiment and
//! field) while the last good config keeps serving, and the process still exits 0
//! on SIGTERM with the watcher running.

mod support;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cohortd::transport::pb;
use cohortd::transport::pb::assignment_client::AssignmentClient;
use support::binary::Killed;
use support::compile::version_of;
use support::kubelet::AtomicWriter;
use support::unix::unix_client;
use tonic::transport::Channel;

fn exp(key: &str, name: &str) -> String {
    format!(
        r#"{{"key":"{key}","name":"{name}","status":"running","variants":["control","treatment"]}}"#
    )
}

/// Collects the server's stderr (JSON log lines) as it is written.
fn collect_logs(child: &mut Child) -> Arc<Mutex<Vec<serde_json::Value>>> {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (out, stderr) = (Arc::clone(&logs), child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                out.lock().unwrap().push(v);
            }
        }
    });
    logs
}

fn logged(logs: &Mutex<Vec<serde_json::Value>>, message: &str) -> Vec<serde_json::Value> {
    logs.lock()
        .unwrap()
        .iter()
        .filter(|l| l["message"] == message)
        .cloned()
        .collect()
}

const REJECTED: &str = "config reload rejected; the last good config keeps serving";
/// One line per problem, before the one `REJECTED` line.
const PROBLEM: &str = "config problem";

async fn served_version(c: &mut AssignmentClient<Channel>) -> String {
    c.assign(pb::AssignRequest {
        experiment: "a".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .config_version
}

/// Polls (bounded) until the server reports `want`.
async fn wait_served(c: &mut AssignmentClient<Channel>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while served_version(c).await != want {
        assert!(Instant::now() < deadline, "version {want} never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cohortd_serve_follows_a_configmap_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let sock = tmp.path().join("c.sock");
    let writer = AtomicWriter::new(&cfg);
    let (a1, b1) = (exp("a", "1"), exp("b", "1"));
    writer.write(&[("a.json", &a1), ("b.json", &b1)]).unwrap();

    let mut server = Killed(
        Command::new(env!("CARGO_BIN_EXE_cohortd"))
            .arg("serve")
            .arg("--config-dir")
            .arg(&cfg)
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            // Events only: every change below must arrive through the watch.
            .args(["--admin-listen", "off", "--log-format", "json"])
            .args(["--ofrep-listen", "off", "--sync-listen", "off"])
            .args(["--debounce-ms", "20", "--poll-interval", "0"])
            .env("COHORTD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let logs = collect_logs(&mut server.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::UnixStream::connect(&sock).await.is_err() {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "server exited early"
        );
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = unix_client(sock.clone()).await;
    assert_eq!(
        served_version(&mut c).await,
        version_of(&[("a.json", &a1), ("b.json", &b1)])
    );

    let a2 = exp("a", "2");
    writer.write(&[("a.json", &a2), ("b.json", &b1)]).unwrap();
    let v2 = version_of(&[("a.json", &a2), ("b.json", &b1)]);
    wait_served(&mut c, &v2).await;

    // Invalid: refused (and logged with file, experiment and field) while the
    // last good config keeps serving; then a valid update (b removed) is served.
    let bad = r#"{"key":"b","status":"running","variants":[]}"#;
    writer.write(&[("a.json", &a2), ("b.json", bad)]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while logged(&logs, REJECTED).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the invalid update was never rejected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let summary = logged(&logs, REJECTED).remove(0);
    assert_eq!(summary["problems"], 1, "{summary}");
    assert_eq!(summary["version"], v2.as_str(), "{summary}");
    let rejected = logged(&logs, PROBLEM).remove(0);
    assert!(
        rejected["file"].as_str().unwrap().ends_with("b.json"),
        "{rejected}"
    );
    assert_eq!(rejected["experiment"], "b");
    assert_eq!(rejected["field"], "variants");
    assert!(
        rejected["error"].as_str().unwrap().contains("variant"),
        "{rejected}"
    );
    assert_eq!(
        served_version(&mut c).await,
        v2,
        "an invalid update is never served"
    );

    let a3 = exp("a", "3");
    writer.write(&[("a.json", &a3)]).unwrap();
    wait_served(&mut c, &version_of(&[("a.json", &a3)])).await;
    let gone = c
        .assign(pb::AssignRequest {
            experiment: "b".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    assert!(logged(&logs, "config reload applied").len() >= 2);

    let ok = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = server.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
}
