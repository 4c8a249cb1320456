//! A real Go service running the OpenFeature flagd provider in IN-PROCESS mode
//! against cohortd: tests/go/cmd/inprocess-client (built by .ci/setup-go.sh)
//! syncs tests/go/testdata/flags.json from cohortd's flagd.sync.v1 service,
//! evaluates every flag locally with flagd core v0.16.0 (the high-precision
//! `fractional`, so cohortd runs with `--flagd-fractional v2`), and compares
//! value, variant, reason and error code with cohortd's own flagd.evaluation.v1
//! answers; then a flag is disabled in the file and the provider must see it
//! (PROVIDER_CONFIGURATION_CHANGED) and still agree.

mod support;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::binary::free_port;
use support::process::Driven;
use support::runners::installed;

const FLAGS: &str = include_str!("go/testdata/flags.json");

#[test]
fn go_flagd_provider_in_process_agrees_with_cohortd_rpc() {
    let Some(bin) = installed(".tools/bin/cohortd-inprocess-client", ".ci/setup-go.sh") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let file = config.join("flags.json");
    std::fs::write(&file, FLAGS).unwrap();
    let (rpc, sync) = (free_port(), free_port());
    let mut server = Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("serve")
        .arg("--config-dir")
        .arg(&config)
        .args([
            "--listen",
            &rpc.to_string(),
            "--sync-listen",
            &sync.to_string(),
        ])
        .args(["--admin-listen", "off", "--ofrep-listen", "off"])
        .args(["--flagd-fractional", "v2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(rpc).is_err() || TcpStream::connect(sync).is_err() {
        assert!(
            server.try_wait().unwrap().is_none(),
            "cohortd serve exited early"
        );
        assert!(Instant::now() < deadline, "cohortd serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cmd = Command::new(bin);
    cmd.arg("-sync").arg(sync.to_string());
    cmd.arg("-rpc").arg(rpc.to_string());
    cmd.arg("-flags").arg(&file);
    let mut child = Driven::spawn(cmd, Duration::from_secs(120));
    let result = (|| {
        child.expect_line("READY-FOR-CHANGE")?;
        let mut doc: serde_json::Value = serde_json::from_str(FLAGS).unwrap();
        doc["flags"]["new-checkout"]["state"] = "DISABLED".into();
        let tmp = root.path().join("flags.json.next");
        std::fs::write(&tmp, doc.to_string()).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        child.send_line("CHANGED");
        child.expect_line("OK")
    })();
    let _ = server.kill();
    let _ = server.wait();
    if let Err(e) = result {
        panic!("{e}\nstderr:\n{}", child.abort());
    }
    let (ok, stderr) = child.finish();
    assert!(ok, "the Go in-process client failed:\n{stderr}");
}
