//! A real Java service calling cohortd: tests/java (built by .ci/setup-java.sh)
//! uses the grpc-java client generated from proto/cohortd/v1 and the OpenFeature
//! Java SDK with the flagd provider (java-sdk-contrib, RPC mode), and compares
//! every answer with what `cohortd assign --all` computes offline for the same
//! config and contexts, before and after a config change it must notice (Watch
//! and PROVIDER_CONFIGURATION_CHANGED).

mod support;

use std::process::Command;
use std::time::Duration;

use support::clients::serve;
use support::flagd::changed_config;
use support::process::Driven;
use support::runners::installed;

#[test]
fn java_clients_match_offline_assignments_and_see_changes() {
    let Some(cp_file) = installed("tests/java/target/classpath.txt", ".ci/setup-java.sh") else {
        return;
    };
    let classes = cp_file.with_file_name("classes");
    let deps = std::fs::read_to_string(&cp_file).unwrap();
    let srv = serve();
    let before = srv.cases("cases-before.json");
    let mut cmd = Command::new(std::env::var_os("COHORTD_JAVA").unwrap_or_else(|| "java".into()));
    cmd.arg("-cp")
        .arg(format!("{}:{}", classes.display(), deps.trim()))
        .arg("dev.cohortd.clients.Main")
        .arg(srv.tcp.ip().to_string())
        .arg(srv.tcp.port().to_string())
        .arg(&before);
    let mut child = Driven::spawn(cmd, Duration::from_secs(180));
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
    assert!(ok, "the Java client failed:\n{stderr}");
}
