//! Interop with the real OpenFeature Node SDK and flagd provider (RPC mode):
//! tests/node/flagd_smoke.mjs makes the same checks as the Python client, plus
//! flag metadata and error messages, which the Node provider passes through.

mod flagd_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use flagd_common::{expectations, start, stopped_kill_switch, store, Driven};

/// The Node test directory when its modules are installed (`.ci/setup-node.sh`).
/// Missing modules skip the test outside CI and fail it in CI.
fn node_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    if dir
        .join("node_modules/@openfeature/flagd-provider")
        .exists()
    {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("tests/node/node_modules is missing in CI: run `bash .ci/setup-node.sh` (bash .ci/test.sh does)");
    }
    eprintln!("skipping: tests/node/node_modules missing (run `bash .ci/setup-node.sh`)");
    None
}

#[test]
fn node_flagd_provider_resolves_and_sees_configuration_changes() {
    let Some(dir) = node_dir() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start(store(), Duration::from_secs(20)));
    let mut cmd = Command::new(std::env::var_os("COHORTD_NODE").unwrap_or_else(|| "node".into()));
    cmd.current_dir(&dir)
        .arg("flagd_smoke.mjs")
        .arg(srv.addr.port().to_string())
        .arg(expectations());
    let mut child = Driven::spawn(cmd, Duration::from_secs(90));
    if let Err(e) = child.expect_line("READY-FOR-CHANGE") {
        panic!("{e}\nstderr:\n{}", child.abort());
    }
    srv.store.install(stopped_kill_switch()).expect("a change");
    child.send_line("CHANGED");
    if let Err(e) = child.expect_line("OK") {
        panic!("{e}\nstderr:\n{}", child.abort());
    }
    let (ok, stderr) = child.finish();
    assert!(ok, "the Node client failed:\n{stderr}");
    let seen = srv.sink.take();
    assert!(seen
        .iter()
        .any(|s| s.experiment == "upload-limit-mb" && s.variant == "new"));
}
