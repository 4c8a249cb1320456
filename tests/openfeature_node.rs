//! Interop with the real OpenFeature Node SDK and flagd provider (RPC mode):
//! tests/node/flagd_smoke.mjs makes the same checks as the Python client, plus
//! flag metadata and error messages, which the Node provider passes through.

mod support;

use std::process::Command;
use std::time::Duration;

use support::flagd::{expectations, start, stopped_kill_switch, store};
use support::process::Driven;
use support::runners::node_dir;

#[test]
fn node_flagd_provider_resolves_and_sees_configuration_changes() {
    let Some(dir) = node_dir("@openfeature/flagd-provider") else {
        return;
    };
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
