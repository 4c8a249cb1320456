//! A real Go service calling cohortd: tests/go/cmd/cohortd-client (built by
//! .ci/setup-go.sh) uses the cohortd.v1 client generated from proto/cohortd/v1
//! over TCP and the Unix socket, and the OpenFeature Go SDK with the flagd
//! provider (go-sdk-contrib, RPC mode, which speaks the Connect protocol: served
//! on cohortd's OFREP listener), and compares every answer with what
//! `cohortd assign --all` computes offline for the same config and contexts,
//! before and after a config change it must notice (Watch and
//! PROVIDER_CONFIGURATION_CHANGED).

mod support;

use std::process::Command;
use std::time::Duration;

use support::clients::serve;
use support::flagd::changed_config;
use support::process::Driven;
use support::runners::installed;

#[test]
fn go_clients_match_offline_assignments_and_see_changes() {
    let Some(bin) = installed(".tools/bin/cohortd-go-client", ".ci/setup-go.sh") else {
        return;
    };
    let srv = serve();
    let before = srv.cases("cases-before.json");
    let mut cmd = Command::new(bin);
    cmd.arg("-tcp")
        .arg(srv.tcp.to_string())
        .arg("-unix")
        .arg(&srv.unix)
        .arg("-cases")
        .arg(&before)
        // The Go flagd provider speaks Connect over HTTP/1.1: cohortd serves it
        // beside OFREP (src/transport/flagd/connect.rs).
        .arg("-openfeature")
        .arg(srv.ofrep.to_string());
    let mut child = Driven::spawn(cmd, Duration::from_secs(120));
    if let Err(e) = child.expect_line("READY-FOR-CHANGE") {
        panic!("{e}\nstderr:\n{}", child.abort());
    }
    srv.write_config(&changed_config());
    let after = srv.cases("cases-after.json");
    child.send_line(&format!("CHANGED {}", after.display()));
    if let Err(e) = child.expect_line("OK") {
        panic!("{e}\nstderr:\n{}", child.abort());
    }
    let (ok, stderr) = child.finish();
    assert!(ok, "the Go client failed:\n{stderr}");
}
