//! A real Go service reading cohortd through OFREP: tests/go/cmd/ofrep-client
//! (built by .ci/setup-go.sh) uses the OpenFeature Go SDK with the OFREP
//! provider (go-sdk-contrib/providers/ofrep) against `cohortd serve`'s OFREP
//! listener, and compares every value type, variant, reason and metadata with
//! what `cohortd assign --all` computes offline for the same config and
//! contexts, checks FLAG_NOT_FOUND and type mismatches, then sees a config
//! change served (the provider has no events, so the client polls, bounded).

mod support;

use std::process::Command;
use std::time::Duration;

use support::clients::serve;
use support::flagd::changed_config;
use support::process::Driven;
use support::runners::installed;

#[test]
fn go_ofrep_provider_matches_offline_assignments_and_sees_changes() {
    let Some(bin) = installed(".tools/bin/cohortd-ofrep-client", ".ci/setup-go.sh") else {
        return;
    };
    let srv = serve();
    let before = srv.cases("cases-before.json");
    let mut cmd = Command::new(bin);
    cmd.arg("-url")
        .arg(format!("http://{}", srv.ofrep))
        .arg("-cases")
        .arg(&before);
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
    assert!(ok, "the Go OFREP client failed:\n{stderr}");
}
